// Package webhook holds lanes-manager's admission handlers, thin glue over trafficrouting that
// reads only the informer cache. The Pod CREATE mutating handler asks which lane labels a new pod
// gets and returns the patch; it never mutates a workload and never rejects a pod: a broken lane
// becomes an admission warning and an Event, and the pod is admitted as it is. The lane validator
// (LaneValidator) refuses a TrafficRouting or a lane member Rollout whose rules the lane's provider
// cannot express, with trafficrouting's sentence, and warns about surprising ones.
package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/go-logr/logr"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// Path is where the handler is served.
const Path = "/mutate-lane-pod"

// Outcome of one admission, as counted in metrics.
type Outcome string

// Outcomes.
const (
	OutcomeLabelled      Outcome = "labelled"
	OutcomeUnchanged     Outcome = "unchanged"
	OutcomeMisconfigured Outcome = "misconfigured"
	OutcomeError         Outcome = "error"
)

// Observer receives what the handler did (metrics).
type Observer interface {
	Admission(outcome Outcome)
	LabelsApplied(n int)
	LabelsRemoved(n int)
}

// PodLabeler stamps lane labels on pods at creation.
type PodLabeler struct {
	Resolver *trafficrouting.Resolver
	Recorder record.EventRecorder
	Observer Observer
}

var _ admission.Handler = &PodLabeler{}

// Handle decides the lane labels of a new pod and patches them in.
func (h *PodLabeler) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" {
		return admission.Allowed("not a pod creation")
	}
	// The decision reads only the pod's metadata (labels, annotations, owner): decodePodMetadata
	// decodes just that, with field names matched case-sensitively as the API server's own
	// decoder does, and only checks that the containers, volumes and status are JSON.
	meta, members, err := decodePodMetadata(req.Object.Raw)
	if err == nil && members > 1 {
		// The API server sends the object it serialised, with one metadata; a JSON patch of
		// /metadata/labels would apply to another view of this one than the decoder's merge.
		err = fmt.Errorf("decode pod metadata: the pod has %d metadata members, so which labels it has is ambiguous", members)
	}
	if err != nil {
		h.Observer.Admission(OutcomeError)
		return admission.Errored(http.StatusBadRequest, err)
	}
	pod := &meta
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	decision, err := h.Resolver.Decide(ctx, pod)
	if err != nil {
		requestLogger(ctx).WithName("lane-stamper").Error(err, "cannot decide lane labels; the label reconciler will retry")
		h.Observer.Admission(OutcomeError)
		return admission.Allowed("").WithWarnings("kruise-lanes: lane labels not decided at creation (" + err.Error() + "); the label reconciler will retry")
	}
	if decision.Problem != nil {
		h.Observer.Admission(OutcomeMisconfigured)
		// sideEffects: None — a dry-run admission (kubectl apply --dry-run=server) records nothing.
		if req.DryRun == nil || !*req.DryRun {
			h.Recorder.Event(decision.Rollout, corev1.EventTypeWarning, "LaneMisconfigured", decision.Problem.Error())
		}
		return admission.Allowed("").WithWarnings("kruise-lanes: " + decision.Problem.Error())
	}
	if decision.Lane == nil {
		h.Observer.Admission(OutcomeUnchanged)
		return admission.Allowed("pod is in no lane")
	}
	change := trafficrouting.LabelChanges(pod.Labels, pod.Annotations, decision.Labels)
	if change.IsEmpty(pod.Annotations) {
		h.Observer.Admission(OutcomeUnchanged)
		return admission.Allowed("lane labels already in place")
	}
	h.Observer.Admission(OutcomeLabelled)
	h.Observer.LabelsApplied(len(change.Set))
	h.Observer.LabelsRemoved(len(change.Remove))
	if log := requestLogger(ctx).V(1); log.Enabled() {
		log.WithName("lane-stamper").Info("stamping lane labels", "lane", decision.Lane.Name, "role", decision.Role, "rollout", decision.Rollout.Name, "set", change.Set, "remove", change.Remove)
	}
	return admission.Patched("lane labels", MetadataPatch(pod.Labels, pod.Annotations, change)...)
}

// requestLogger is the request's logger, which controller-runtime's webhook puts in the context,
// else controller-runtime's root logger. Unlike logf.FromContext it derives no new logger (a
// copy of the sink on every admission, most of which log nothing); name it where it logs.
func requestLogger(ctx context.Context) logr.Logger {
	if log, err := logr.FromContext(ctx); err == nil {
		return log
	}
	return logf.Log
}

// MetadataPatch is the JSON patch of a label change on an object with these labels and
// annotations. It touches nothing but those two maps, so fields of the object this binary's Go
// types do not know (a newer API server's) are never removed.
func MetadataPatch(labels, annotations map[string]string, c trafficrouting.LabelChange) []jsonpatch.JsonPatchOperation {
	var small [8]mapEdit // a lane's labels, and those it gives back: no allocation
	edits := small[:0]
	for k, v := range c.Set {
		edits = append(edits, mapEdit{key: k, value: v})
	}
	for _, k := range c.Remove {
		edits = append(edits, mapEdit{key: k, remove: true}) // a key also in Set is removed
	}
	annotationEdits := make([]mapEdit, 0, len(c.Annotations()))
	for _, a := range c.Annotations() {
		annotationEdits = append(annotationEdits, mapEdit{key: a.Key, value: a.Value, remove: a.Remove})
	}
	ops := make([]jsonpatch.JsonPatchOperation, 0, len(edits)+len(annotationEdits))
	ops = appendMapPatch(ops, "/metadata/labels", labels, edits)
	ops = appendMapPatch(ops, "/metadata/annotations", annotations, annotationEdits)
	if len(ops) == 0 {
		return nil
	}
	return ops
}

// mapEdit sets (remove false) or removes one key of a string map.
type mapEdit struct {
	key, value string
	remove     bool
}

// appendMapPatch appends to ops the operations that make edits to the string map at path, whose
// current content is current (nil when the map is absent). Keys are patched in sorted order; of
// several edits of one key the last counts. It sorts edits.
func appendMapPatch(ops []jsonpatch.JsonPatchOperation, path string, current map[string]string, edits []mapEdit) []jsonpatch.JsonPatchOperation {
	slices.SortStableFunc(edits, func(a, b mapEdit) int { return strings.Compare(a.key, b.key) })
	if current == nil {
		var whole map[string]string
		for _, e := range edits {
			switch {
			case !e.remove && whole == nil:
				whole = map[string]string{e.key: e.value}
			case !e.remove:
				whole[e.key] = e.value
			case whole != nil:
				delete(whole, e.key)
			}
		}
		if len(whole) == 0 {
			return ops
		}
		return append(ops, jsonpatch.NewOperation("add", path, whole))
	}
	for i, e := range edits {
		if i+1 < len(edits) && edits[i+1].key == e.key {
			continue // a later edit of the key counts
		}
		old, present := current[e.key]
		switch {
		case e.remove && present:
			ops = append(ops, jsonpatch.NewOperation("remove", path+"/"+escapePointer(e.key), nil))
		case !e.remove && !present:
			ops = append(ops, jsonpatch.NewOperation("add", path+"/"+escapePointer(e.key), e.value))
		case !e.remove && old != e.value:
			ops = append(ops, jsonpatch.NewOperation("replace", path+"/"+escapePointer(e.key), e.value))
		}
	}
	return ops
}

// escapePointer escapes a map key as one JSON Pointer reference token (RFC 6901): "~" first, so
// that the "~" of an escaped "/" is not escaped again. Most keys need neither, and cost nothing.
func escapePointer(key string) string {
	if !strings.ContainsAny(key, "~/") {
		return key
	}
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}
