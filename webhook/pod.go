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
	// A change that is not empty has at least one operation (checked by
	// TestMetadataPatchMakesTheChange).
	patch, _ := appendMetadataPatch(make([]byte, 0, 512), pod.Labels, pod.Annotations, change) // a labelled pod's patch fits
	return patched("lane labels", patch)
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
