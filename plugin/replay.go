package plugin

import (
	"errors"
	"fmt"
	"maps"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// IngressPlan is what Kruise will ask an ingress provider to do for one Rollout or TrafficRouting:
// which Ingress, which class of script, which Services, and the routing strategy of each step.
type IngressPlan struct {
	// IngressName is the stable Ingress; the canary Ingress is IngressName + "-canary".
	IngressName string
	// ClassType selects the provider script ("nginx" when empty, as in Kruise).
	ClassType string
	// StableService is the Service the stable Ingress routes to.
	StableService string
	// CanaryService replaces StableService in the canary Ingress's backends.
	CanaryService string
	// Steps holds each step's routing strategy, in order (a TrafficRouting has one).
	Steps []rolloutsv1beta1.TrafficRoutingStrategy
}

// ErrNoIngressRouting means the object routes no traffic through an Ingress.
var ErrNoIngressRouting = errors.New("no ingress traffic routing")

// PlanForRollout derives the plan Kruise follows for a v1beta1 canary Rollout whose first traffic
// routing reference is an Ingress. Without a shared TrafficRouting the canary Ingress points at
// the "<service>-canary" Service Kruise creates.
func PlanForRollout(rollout *rolloutsv1beta1.Rollout) (IngressPlan, error) {
	refs := rollout.Spec.Strategy.GetTrafficRouting()
	if len(refs) == 0 || refs[0].Ingress == nil {
		return IngressPlan{}, fmt.Errorf("rollout %s has %w: spec.strategy.canary.trafficRoutings[0].ingress is not set", rollout.Name, ErrNoIngressRouting)
	}
	ref := refs[0]
	plan := IngressPlan{
		IngressName:   ref.Ingress.Name,
		ClassType:     ref.Ingress.ClassType,
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

// PlanForTrafficRouting derives the plan Kruise follows for a shared v1alpha1 TrafficRouting:
// one step, and the canary Ingress points at the stable Service (lane separation comes from pod
// labels, not from a canary Service).
func PlanForTrafficRouting(tr *rolloutsv1alpha1.TrafficRouting) (IngressPlan, error) {
	if len(tr.Spec.ObjectRef) == 0 || tr.Spec.ObjectRef[0].Ingress == nil {
		return IngressPlan{}, fmt.Errorf("trafficrouting %s has %w: spec.objectRef[0].ingress is not set", tr.Name, ErrNoIngressRouting)
	}
	ref := tr.Spec.ObjectRef[0]
	return IngressPlan{
		IngressName:   ref.Ingress.Name,
		ClassType:     ref.Ingress.ClassType,
		StableService: ref.Service,
		CanaryService: ref.Service,
		Steps:         []rolloutsv1beta1.TrafficRoutingStrategy{rolloutsv1alpha1.ConversionToV1beta1TrafficRoutingStrategy(tr.Spec.Strategy)},
	}, nil
}

// StepResult is the canary Ingress after one step, or nil while Kruise has not created it.
type StepResult struct {
	Step          int                   `json:"step"`
	CanaryIngress *networkingv1.Ingress `json:"canaryIngress"`
}

// StepError says at which step a script refused the input.
type StepError struct {
	Step int
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("step %d: %v", e.Step, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }

// Replay runs the plan's steps through a script the way Kruise's ingress controller does: the
// first step that routes traffic creates the canary Ingress from the stable one (script run with
// weight 0 and nothing else), then runs the step's strategy on the canary's current annotations;
// each later step starts from the annotations the previous one left. A step that sets neither
// traffic nor matches leaves the canary Ingress as it was, as Kruise does. existing, when not nil,
// is a canary Ingress that is already there (for example one an earlier script wrote).
func Replay(script string, stable *networkingv1.Ingress, plan IngressPlan, existing *networkingv1.Ingress) ([]StepResult, error) {
	results := make([]StepResult, 0, len(plan.Steps))
	var canary *networkingv1.Ingress
	if existing != nil {
		canary = existing.DeepCopy()
	}
	for i, strategy := range plan.Steps {
		step := i + 1
		if strategy.Traffic != nil || len(strategy.Matches) > 0 {
			if canary == nil {
				canary = BuildCanaryIngress(stable, plan)
				created, err := RunIngressScript(script, IngressInput{
					Annotations:   canary.Annotations,
					Weight:        "0",
					CanaryService: plan.CanaryService,
				})
				if err != nil {
					return results, &StepError{Step: step, Err: err}
				}
				canary.Annotations = created
			}
			weight, err := weightOf(strategy.Traffic)
			if err != nil {
				return results, &StepError{Step: step, Err: err}
			}
			next, err := RunIngressScript(script, IngressInput{
				Annotations:           canary.Annotations,
				Weight:                weight,
				Matches:               strategy.Matches,
				CanaryService:         plan.CanaryService,
				RequestHeaderModifier: strategy.RequestHeaderModifier,
			})
			if err != nil {
				return results, &StepError{Step: step, Err: err}
			}
			canary = canary.DeepCopy()
			canary.Annotations = next
		}
		var snapshot *networkingv1.Ingress
		if canary != nil {
			snapshot = canary.DeepCopy()
		}
		results = append(results, StepResult{Step: step, CanaryIngress: snapshot})
	}
	return results, nil
}

func weightOf(traffic *string) (string, error) {
	if traffic == nil {
		return NoWeight, nil
	}
	is := intstr.FromString(*traffic)
	w, err := intstr.GetScaledValueFromIntOrPercent(&is, 100, true)
	if err != nil {
		return "", fmt.Errorf("traffic %q is not a percentage: %w", *traffic, err)
	}
	return fmt.Sprintf("%d", w), nil
}

// BuildCanaryIngress builds the canary Ingress Kruise creates from a stable one: same class, TLS,
// labels and annotations, only the rules whose backend is the stable Service, with that backend
// replaced by the canary Service.
func BuildCanaryIngress(stable *networkingv1.Ingress, plan IngressPlan) *networkingv1.Ingress {
	canary := &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        stable.Name + "-canary",
			Namespace:   stable.Namespace,
			Labels:      maps.Clone(stable.Labels),
			Annotations: maps.Clone(stable.Annotations),
		},
		Spec: networkingv1.IngressSpec{
			IngressClassName: stable.Spec.IngressClassName,
			TLS:              stable.Spec.TLS,
			Rules:            []networkingv1.IngressRule{},
		},
	}
	for _, rule := range stable.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		canaryRule := networkingv1.IngressRule{Host: rule.Host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
		for _, path := range rule.HTTP.Paths {
			if path.Backend.Service == nil || path.Backend.Service.Name != plan.StableService {
				continue
			}
			p := *path.DeepCopy()
			p.Backend.Service.Name = plan.CanaryService
			canaryRule.HTTP.Paths = append(canaryRule.HTTP.Paths, p)
		}
		if len(canaryRule.HTTP.Paths) > 0 {
			canary.Spec.Rules = append(canary.Spec.Rules, canaryRule)
		}
	}
	return canary
}
