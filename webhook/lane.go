package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// LanePath is where the lane validator is served.
const LanePath = "/validate-lane"

// LaneValidator refuses, on CREATE and UPDATE, a TrafficRouting or a lane member Rollout whose
// traffic rules the lane's provider cannot express or whose lane options are wrong, with the
// sentence trafficrouting gives, and warns about rules that are accepted but surprising. It reads
// only the informer cache.
type LaneValidator struct {
	Reader    client.Reader
	Decoder   admission.Decoder
	Defaults  trafficrouting.Defaults
	Providers trafficrouting.Providers
}

var _ admission.Handler = &LaneValidator{}

// NewLaneValidator builds the validator with a decoder for scheme.
func NewLaneValidator(r client.Reader, scheme *runtime.Scheme, d trafficrouting.Defaults, p trafficrouting.Providers) *LaneValidator {
	return &LaneValidator{Reader: r, Decoder: admission.NewDecoder(scheme), Defaults: d, Providers: p}
}

// Handle decides one admission.
func (h *LaneValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	log := logf.FromContext(ctx).WithName("lane-validator")
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	verdict, err := h.decide(ctx, req)
	if err != nil {
		var decodeErr *decodeError
		if errors.As(err, &decodeErr) {
			return admission.Errored(http.StatusBadRequest, err)
		}
		// The cache could not answer: admit, as failurePolicy Ignore would, and say so.
		log.Error(err, "cannot judge the lane; admitting")
		return admission.Allowed("").WithWarnings("kruise-lanes: the lane was not checked (" + err.Error() + ")")
	}
	warnings := make([]string, 0, len(verdict.Warnings))
	for _, w := range verdict.Warnings {
		warnings = append(warnings, "kruise-lanes: "+w)
	}
	if verdict.Err != nil {
		return admission.Denied(verdict.Err.Error()).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

func (h *LaneValidator) decide(ctx context.Context, req admission.Request) (trafficrouting.Verdict, error) {
	if req.Kind.Group != rolloutsv1alpha1.GroupVersion.Group {
		return trafficrouting.Verdict{}, nil
	}
	switch {
	case req.Kind.Kind == "TrafficRouting" && req.Kind.Version == rolloutsv1alpha1.GroupVersion.Version:
		tr := &rolloutsv1alpha1.TrafficRouting{}
		if err := h.Decoder.Decode(req, tr); err != nil {
			return trafficrouting.Verdict{}, &decodeError{fmt.Errorf("decode trafficrouting: %w", err)}
		}
		if tr.Namespace == "" {
			tr.Namespace = req.Namespace
		}
		return trafficrouting.ValidateTrafficRouting(ctx, h.Reader, tr, h.Defaults, h.Providers)
	case req.Kind.Kind == "Rollout" && req.Kind.Version == rolloutsv1beta1.GroupVersion.Version:
		rollout := &rolloutsv1beta1.Rollout{}
		if err := h.Decoder.Decode(req, rollout); err != nil {
			return trafficrouting.Verdict{}, &decodeError{fmt.Errorf("decode rollout: %w", err)}
		}
		return h.rollout(ctx, req, rollout)
	case req.Kind.Kind == "Rollout" && req.Kind.Version == rolloutsv1alpha1.GroupVersion.Version:
		old := &rolloutsv1alpha1.Rollout{}
		if err := h.Decoder.Decode(req, old); err != nil {
			return trafficrouting.Verdict{}, &decodeError{fmt.Errorf("decode rollout: %w", err)}
		}
		rollout := &rolloutsv1beta1.Rollout{}
		if err := old.ConvertTo(rollout); err != nil {
			return trafficrouting.Verdict{}, &decodeError{fmt.Errorf("convert rollout to v1beta1: %w", err)}
		}
		return h.rollout(ctx, req, rollout)
	}
	return trafficrouting.Verdict{}, nil
}

func (h *LaneValidator) rollout(ctx context.Context, req admission.Request, rollout *rolloutsv1beta1.Rollout) (trafficrouting.Verdict, error) {
	if rollout.Namespace == "" {
		rollout.Namespace = req.Namespace
	}
	return trafficrouting.ValidateRollout(ctx, h.Reader, rollout, h.Defaults, h.Providers)
}
