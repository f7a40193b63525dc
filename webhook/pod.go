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
	"maps"
	"net/http"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

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
	log := logf.FromContext(ctx).WithName("lane-stamper")
	if req.Operation != admissionv1.Create || req.Kind.Kind != "Pod" {
		return admission.Allowed("not a pod creation")
	}
	// The decision reads only the pod's metadata (labels, annotations, owner): decoding just that
	// skips the containers, volumes and status a whole-Pod decode would build. Field names are
	// matched case-sensitively, as the API server's own decoder does.
	meta := &metav1.PartialObjectMetadata{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, meta); err != nil {
		h.Observer.Admission(OutcomeError)
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode pod metadata: %w", err))
	}
	pod := &corev1.Pod{ObjectMeta: meta.ObjectMeta}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	decision, err := h.Resolver.Decide(ctx, pod)
	if err != nil {
		log.Error(err, "cannot decide lane labels; the label reconciler will retry")
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
	log.V(1).Info("stamping lane labels", "lane", decision.Lane.Name, "role", decision.Role, "rollout", decision.Rollout.Name, "set", change.Set, "remove", change.Remove)
	return admission.Patched("lane labels", MetadataPatch(pod.Labels, pod.Annotations, change)...)
}

// MetadataPatch is the JSON patch of a label change on an object with these labels and
// annotations. It touches nothing but those two maps, so fields of the object this binary's Go
// types do not know (a newer API server's) are never removed.
func MetadataPatch(labels, annotations map[string]string, c trafficrouting.LabelChange) []jsonpatch.JsonPatchOperation {
	set := map[string]*string{}
	for k, v := range c.Set {
		set[k] = &v
	}
	for _, k := range c.Remove {
		set[k] = nil
	}
	ops := mapPatch("/metadata/labels", labels, set)
	return append(ops, mapPatch("/metadata/annotations", annotations, c.Annotations())...)
}

// mapPatch sets (non-nil) or removes (nil) keys of the string map at path, whose current content
// is current (nil when the map is absent). Keys are patched in sorted order.
func mapPatch(path string, current map[string]string, change map[string]*string) []jsonpatch.JsonPatchOperation {
	var ops []jsonpatch.JsonPatchOperation
	if current == nil {
		whole := map[string]string{}
		for k, v := range change {
			if v != nil {
				whole[k] = *v
			}
		}
		if len(whole) == 0 {
			return nil
		}
		return []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", path, whole)}
	}
	for _, k := range slices.Sorted(maps.Keys(change)) {
		v := change[k]
		old, present := current[k]
		member := path + "/" + escapePointer(k)
		switch {
		case v == nil && present:
			ops = append(ops, jsonpatch.NewOperation("remove", member, nil))
		case v != nil && !present:
			ops = append(ops, jsonpatch.NewOperation("add", member, *v))
		case v != nil && old != *v:
			ops = append(ops, jsonpatch.NewOperation("replace", member, *v))
		}
	}
	return ops
}

// escapePointer escapes a map key as one JSON Pointer reference token (RFC 6901).
func escapePointer(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
