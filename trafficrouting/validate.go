package trafficrouting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// laneAnnotations are the annotations of a TrafficRouting that Kruise Lanes reads.
var laneAnnotations = []string{AnnotationTag, AnnotationLaneHeader, AnnotationDialects, AnnotationBaseLabels, AnnotationMesh}

// Verdict is the admission decision on a TrafficRouting or a lane member Rollout: Err, when not
// nil, wraps ErrMisconfigured and says what to change (the object is refused); Warnings are
// sentences about rules that are accepted but surprising.
type Verdict struct {
	Err      error
	Warnings []string
}

// ValidateTrafficRouting decides whether a TrafficRouting may be stored: the lane must resolve as
// the reconciler resolves it (ResolveWithEntry, with its entry Ingress read through r) and its
// strategy must be expressible by the provider of each of its entries (StepProblems). A non-nil
// error is a failure to read the entry Ingress, not a verdict.
func ValidateTrafficRouting(ctx context.Context, r client.Reader, tr *rolloutsv1alpha1.TrafficRouting, d Defaults, p Providers) (Verdict, error) {
	var v Verdict
	for k := range tr.Annotations {
		if strings.HasPrefix(k, AnnotationPrefix) && !slices.Contains(laneAnnotations, k) {
			v.Warnings = append(v.Warnings, fmt.Sprintf("annotation %s is not one Kruise Lanes reads (%s): check its spelling", k, strings.Join(laneAnnotations, ", ")))
		}
	}
	var problems []error
	if _, err := ResolveWithEntry(ctx, r, tr, d); err != nil {
		if !errors.Is(err, ErrMisconfigured) {
			return Verdict{}, err
		}
		problems = append(problems, err)
	}
	step := strategyOf(tr)
	var errs field.ErrorList
	for i, ref := range tr.Spec.ObjectRef {
		provider := p.Of(rolloutsv1alpha1.ConversionToV1beta1TrafficRoutingRef(ref))
		e, w := StepProblems(provider, field.NewPath("spec", "strategy"), step)
		errs = append(errs, withProvider(e, provider, field.NewPath("spec", "objectRef").Index(i))...)
		v.Warnings = appendNew(v.Warnings, w...)
	}
	if len(errs) > 0 {
		problems = append(problems, fmt.Errorf("lane %s/%s is %w: the provider of its entry cannot express spec.strategy, so Kruise would stop the release at its first step: %w",
			tr.Namespace, tr.Name, ErrMisconfigured, errs.ToAggregate()))
	}
	v.Err = errors.Join(problems...)
	return v, nil
}

// ValidateRollout decides whether a Rollout that joins a lane may be stored: each canary step must
// be expressible by the provider of each of the Rollout's own traffic routings. The lane it joins
// is read through r; a lane that is missing or misconfigured is a warning (it is the
// TrafficRouting that is fixed, not the member). A non-nil error is a failure to read the lane.
func ValidateRollout(ctx context.Context, r client.Reader, rollout *rolloutsv1beta1.Rollout, d Defaults, p Providers) (Verdict, error) {
	var v Verdict
	name := rollout.Annotations[TrafficRoutingAnnotation]
	if name == "" {
		return v, nil
	}
	tr := &rolloutsv1alpha1.TrafficRouting{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: rollout.Namespace, Name: name}, tr); {
	case apierrors.IsNotFound(err):
		v.Warnings = append(v.Warnings, fmt.Sprintf("the Rollout joins lane %s, and no TrafficRouting %s/%s exists: Kruise waits for it before the release starts", name, rollout.Namespace, name))
	case err != nil:
		return Verdict{}, fmt.Errorf("get trafficrouting %s/%s of rollout %s: %w", rollout.Namespace, name, rollout.Name, err)
	default:
		if _, err := ResolveWithEntry(ctx, r, tr, d); err != nil {
			if !errors.Is(err, ErrMisconfigured) {
				return Verdict{}, err
			}
			v.Warnings = append(v.Warnings, "the Rollout joins a lane whose pods lanes-manager will not label: "+err.Error())
		}
	}
	var errs field.ErrorList
	steps := field.NewPath("spec", "strategy", "canary", "steps")
	for i, ref := range rollout.Spec.Strategy.GetTrafficRouting() {
		provider := p.Of(ref)
		for j, step := range rollout.Spec.Strategy.GetSteps() {
			e, w := StepProblems(provider, steps.Index(j), step.TrafficRoutingStrategy)
			errs = append(errs, withProvider(e, provider, field.NewPath("spec", "strategy", "canary", "trafficRoutings").Index(i))...)
			v.Warnings = appendNew(v.Warnings, w...)
		}
	}
	if len(errs) > 0 {
		v.Err = fmt.Errorf("rollout %s/%s, a member of lane %s, is %w: the provider of its traffic routing cannot express its steps, so Kruise would stop the release there: %w",
			rollout.Namespace, rollout.Name, name, ErrMisconfigured, errs.ToAggregate())
	}
	return v, nil
}

// withProvider names the provider (and, where there are several, the entry) in each error.
func withProvider(errs field.ErrorList, p Provider, ref *field.Path) field.ErrorList {
	for _, e := range errs {
		e.Detail = fmt.Sprintf("the %s provider (%s): %s", p, ref, e.Detail)
	}
	return errs
}

// appendNew appends the strings of add that out does not hold yet.
func appendNew(out []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
