package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CustomNetworkPlan is what Kruise will ask a custom network provider to do for one Rollout or
// TrafficRouting: which object, which Services, and the routing strategy of each step.
type CustomNetworkPlan struct {
	// Ref is the object named in customNetworkRefs; its kind and group select the script.
	Ref rolloutsv1beta1.ObjectRef
	// StableService is the Service the object routes to; CanaryService the one Kruise routes the
	// canary to (equal for a shared TrafficRouting or disableGenerateCanaryService).
	StableService string
	CanaryService string
	// Steps holds each step's routing strategy, in order (a TrafficRouting has one).
	Steps []rolloutsv1beta1.TrafficRoutingStrategy
}

// ErrNoCustomNetworkRouting means the object routes no traffic through exactly one custom
// network reference.
var ErrNoCustomNetworkRouting = errors.New("no single custom network reference")

// CustomNetworkPlanForRollout derives the plan Kruise follows for a v1beta1 canary Rollout whose
// first traffic routing reference names one custom network object.
func CustomNetworkPlanForRollout(rollout *rolloutsv1beta1.Rollout) (CustomNetworkPlan, error) {
	refs := rollout.Spec.Strategy.GetTrafficRouting()
	if len(refs) == 0 || len(refs[0].CustomNetworkRefs) != 1 {
		return CustomNetworkPlan{}, fmt.Errorf("rollout %s has %w: spec.strategy.canary.trafficRoutings[0].customNetworkRefs needs exactly one entry", rollout.Name, ErrNoCustomNetworkRouting)
	}
	ref := refs[0]
	plan := CustomNetworkPlan{
		Ref:           ref.CustomNetworkRefs[0],
		StableService: ref.Service,
		CanaryService: ref.Service + "-canary",
	}
	if rollout.Spec.Strategy.DisableGenerateCanaryService() {
		plan.CanaryService = ref.Service
	}
	for _, step := range rollout.Spec.Strategy.GetSteps() {
		plan.Steps = append(plan.Steps, step.TrafficRoutingStrategy)
	}
	return plan, nil
}

// CustomNetworkPlanForTrafficRouting derives the plan Kruise follows for a shared v1alpha1
// TrafficRouting: one step, and the canary is the stable Service itself.
func CustomNetworkPlanForTrafficRouting(tr *rolloutsv1alpha1.TrafficRouting) (CustomNetworkPlan, error) {
	if len(tr.Spec.ObjectRef) == 0 || len(tr.Spec.ObjectRef[0].CustomNetworkRefs) != 1 {
		return CustomNetworkPlan{}, fmt.Errorf("trafficrouting %s has %w: spec.objectRef[0].customNetworkRefs needs exactly one entry", tr.Name, ErrNoCustomNetworkRouting)
	}
	ref := tr.Spec.ObjectRef[0]
	r := ref.CustomNetworkRefs[0]
	return CustomNetworkPlan{
		Ref:           rolloutsv1beta1.ObjectRef{APIVersion: r.APIVersion, Kind: r.Kind, Name: r.Name},
		StableService: ref.Service,
		CanaryService: ref.Service,
		Steps:         []rolloutsv1beta1.TrafficRoutingStrategy{rolloutsv1alpha1.ConversionToV1beta1TrafficRoutingStrategy(tr.Spec.Strategy)},
	}, nil
}

// CustomNetworkStep is the object after one step.
type CustomNetworkStep struct {
	Step int
	// Object is the custom network object as Kruise left it.
	Object *unstructured.Unstructured
	// Restored is true when Kruise restored the original (a step with neither traffic nor
	// matches finalises the traffic routing).
	Restored bool
}

// ReplayCustomNetwork runs the plan's steps through a script the way Kruise v0.6.2's custom
// network provider and canary controller do. A step with traffic or matches saves the object's
// spec, labels and annotations in OriginalSpecAnnotation if it is not there yet, runs the script
// on the saved original and replaces the object's spec, labels and annotations with the result
// (the annotation kept). A step with neither restores the object from the annotation, as does
// the end of the release; the last element of the returned steps is followed by that final
// restoration, whose result is returned separately.
func ReplayCustomNetwork(script string, original *unstructured.Unstructured, plan CustomNetworkPlan) ([]CustomNetworkStep, *unstructured.Unstructured, error) {
	steps := make([]CustomNetworkStep, 0, len(plan.Steps))
	obj := original.DeepCopy()
	for i, strategy := range plan.Steps {
		step := i + 1
		restored := false
		if strategy.Traffic == nil && len(strategy.Matches) == 0 {
			restoreCustomNetwork(obj)
			restored = true
		} else if err := ensureCustomNetwork(script, obj, plan, strategy); err != nil {
			return steps, nil, &StepError{Step: step, Err: err}
		}
		steps = append(steps, CustomNetworkStep{Step: step, Object: obj.DeepCopy(), Restored: restored})
	}
	final := obj.DeepCopy()
	restoreCustomNetwork(final)
	return steps, final, nil
}

// ensureCustomNetwork is one EnsureRoutes of Kruise's custom network provider on obj.
func ensureCustomNetwork(script string, obj *unstructured.Unstructured, plan CustomNetworkPlan, strategy rolloutsv1beta1.TrafficRoutingStrategy) error {
	annotations := obj.GetAnnotations()
	if _, ok := annotations[OriginalSpecAnnotation]; !ok {
		saved := maps.Clone(annotations)
		delete(saved, OriginalSpecAnnotation)
		encoded, err := json.Marshal(CustomNetworkData{Spec: obj.Object["spec"], Labels: obj.GetLabels(), Annotations: saved})
		if err != nil {
			return fmt.Errorf("save the original spec: %w", err)
		}
		if saved == nil {
			saved = map[string]string{}
		}
		saved[OriginalSpecAnnotation] = string(encoded)
		obj.SetAnnotations(saved)
		annotations = saved
	}
	var original CustomNetworkData
	if err := json.Unmarshal([]byte(annotations[OriginalSpecAnnotation]), &original); err != nil {
		return fmt.Errorf("annotation %s is not valid JSON: %w", OriginalSpecAnnotation, err)
	}
	weight := NoCanaryWeight
	if strategy.Traffic != nil {
		is := intstr.FromString(*strategy.Traffic)
		w, err := intstr.GetScaledValueFromIntOrPercent(&is, 100, true)
		if err != nil {
			return fmt.Errorf("traffic %q is not a percentage: %w", *strategy.Traffic, err)
		}
		weight = int32(w)
	}
	out, err := RunCustomNetworkScript(script, CustomNetworkInput{
		Data:                  original,
		CanaryWeight:          weight,
		StableWeight:          100 - weight,
		Matches:               strategy.Matches,
		CanaryService:         plan.CanaryService,
		StableService:         plan.StableService,
		RequestHeaderModifier: strategy.RequestHeaderModifier,
	})
	if err != nil {
		return err
	}
	next := out.Annotations
	if next == nil {
		next = map[string]string{}
	}
	next[OriginalSpecAnnotation] = annotations[OriginalSpecAnnotation]
	obj.Object["spec"] = out.Spec
	obj.SetAnnotations(next)
	obj.SetLabels(out.Labels)
	return nil
}

// restoreCustomNetwork is Kruise's restore of a custom network object from its annotation; an
// object without the annotation is left as it is.
func restoreCustomNetwork(obj *unstructured.Unstructured) {
	saved := obj.GetAnnotations()[OriginalSpecAnnotation]
	if saved == "" {
		return
	}
	var original CustomNetworkData
	_ = json.Unmarshal([]byte(saved), &original) // Kruise ignores the error too: a broken annotation restores an empty spec
	obj.Object["spec"] = original.Spec
	obj.SetAnnotations(original.Annotations)
	obj.SetLabels(original.Labels)
}
