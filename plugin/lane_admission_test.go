package plugin

import (
	"errors"
	"os"
	"strings"
	"testing"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// laneAdmissionCase is one row of testdata/lane_admission.yaml (its header says what each field
// means).
type laneAdmissionCase struct {
	Name        string                                 `json:"name"`
	Provider    trafficrouting.Provider                `json:"provider"`
	Kind        string                                 `json:"kind"`
	Annotations map[string]string                      `json:"annotations"`
	Strategy    rolloutsv1beta1.TrafficRoutingStrategy `json:"strategy"`
	Warns       string                                 `json:"warns"`
	WebhookOnly bool                                   `json:"webhookOnly"`
	Refused     *struct {
		Webhook string `json:"webhook"`
		Script  string `json:"script"`
	} `json:"refused"`
}

const admissionNS = "shop"

// entryRef is the lane's entry for the case's provider, in the Rollout v1beta1 shape.
func (c laneAdmissionCase) entryRef(t *testing.T) rolloutsv1beta1.TrafficRoutingRef {
	ref := rolloutsv1beta1.TrafficRoutingRef{Service: "web"}
	switch c.Provider {
	case trafficrouting.ProviderMSE, trafficrouting.ProviderHigress:
		ref.Ingress = &rolloutsv1beta1.IngressTrafficRouting{ClassType: string(c.Provider), Name: "web"}
	case trafficrouting.ProviderHTTPRoute:
		ref.CustomNetworkRefs = []rolloutsv1beta1.ObjectRef{{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute", Name: "web"}}
	default:
		t.Fatalf("provider %q: use mse, higress or httproute", c.Provider)
	}
	return ref
}

// lane is the case's TrafficRouting: the lane itself for a TrafficRouting case, the lane the
// member joins (with the case's annotations and a plain header match) for a Rollout case.
func (c laneAdmissionCase) lane(t *testing.T) *rolloutsv1alpha1.TrafficRouting {
	annotations := map[string]string{}
	for k, v := range c.Annotations {
		annotations[k] = v
	}
	tr := &rolloutsv1alpha1.TrafficRouting{
		TypeMeta:   metav1.TypeMeta{APIVersion: rolloutsv1alpha1.GroupVersion.String(), Kind: "TrafficRouting"},
		ObjectMeta: metav1.ObjectMeta{Namespace: admissionNS, Name: "lane", Annotations: annotations},
		Spec: rolloutsv1alpha1.TrafficRoutingSpec{
			ObjectRef: []rolloutsv1alpha1.TrafficRoutingRef{rolloutsv1alpha1.ConversionToV1alpha1TrafficRoutingRef(c.entryRef(t))},
		},
	}
	if c.Kind == "TrafficRouting" {
		for i, m := range c.Strategy.Matches {
			if m.Path != nil || len(m.QueryParams) > 0 {
				t.Fatalf("match %d: a TrafficRouting takes header matches only; make the case kind Rollout", i+1)
			}
		}
		tr.Spec.Strategy = rolloutsv1alpha1.ConversionToV1alpha1TrafficRoutingStrategy(c.Strategy)
	} else {
		tr.Spec.Strategy.Matches = []rolloutsv1alpha1.HttpRouteMatch{{Headers: c.Strategy.Matches[0].Headers}}
		if len(c.Strategy.Matches[0].Headers) == 0 {
			tr.Spec.Strategy.Matches = nil
			tr.Spec.Strategy.Weight = ptrTo(int32(10))
		}
	}
	if _, ok := annotations[trafficrouting.AnnotationTag]; !ok {
		if _, injects := trafficrouting.InjectedValue(tr, trafficrouting.DefaultDefaults().LaneHeader); !injects {
			annotations[trafficrouting.AnnotationTag] = "gray"
		}
	}
	return tr
}

func ptrTo[T any](v T) *T { return &v }

// member is the case's Rollout: a lane member with its own traffic routing to the entry and the
// case's strategy as its one canary step.
func (c laneAdmissionCase) member(t *testing.T) *rolloutsv1beta1.Rollout {
	replicas := intstr.FromString("50%")
	return &rolloutsv1beta1.Rollout{
		TypeMeta: metav1.TypeMeta{APIVersion: rolloutsv1beta1.GroupVersion.String(), Kind: "Rollout"},
		ObjectMeta: metav1.ObjectMeta{Namespace: admissionNS, Name: "web", Annotations: map[string]string{
			trafficrouting.TrafficRoutingAnnotation: "lane",
		}},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Strategy: rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{
				TrafficRoutings: []rolloutsv1beta1.TrafficRoutingRef{c.entryRef(t)},
				Steps:           []rolloutsv1beta1.CanaryStep{{TrafficRoutingStrategy: c.Strategy, Replicas: &replicas}},
			}},
		},
	}
}

func admissionIngress(class string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Namespace: admissionNS, Name: "web"},
		Spec: networkingv1.IngressSpec{IngressClassName: &class, Rules: []networkingv1.IngressRule{{Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/", Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
		}}}}},
	}
}

var admissionHTTPRoute = map[string]any{
	"apiVersion": "gateway.networking.k8s.io/v1",
	"kind":       "HTTPRoute",
	"metadata":   map[string]any{"name": "web", "namespace": admissionNS},
	"spec": map[string]any{
		"parentRefs": []any{map[string]any{"name": "gateway"}},
		"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "web", "port": int64(80)}}}},
	},
}

// TestLaneAdmission runs every case of testdata/lane_admission.yaml through the provider script,
// replayed as Kruise runs it, and through lanes-manager's lane validator, and checks that they
// agree: the script refuses the step if and only if the validator refuses the object, naming the
// same problem; for the cases only lanes-manager can judge, the validator agrees with the lane
// reconciler instead.
func TestLaneAdmission(t *testing.T) {
	data, err := os.ReadFile("testdata/lane_admission.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []laneAdmissionCase
	if err := yaml.UnmarshalStrict(data, &cases); err != nil {
		t.Fatalf("testdata/lane_admission.yaml: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("testdata/lane_admission.yaml has no cases")
	}
	scripts := map[trafficrouting.Provider]string{}
	for _, p := range []trafficrouting.Provider{trafficrouting.ProviderMSE, trafficrouting.ProviderHigress} {
		s, err := luascripts.Ingress(string(p))
		if err != nil {
			t.Fatal(err)
		}
		scripts[p] = string(s)
	}
	httpRoute, err := luascripts.CustomNetwork(string(trafficrouting.ProviderHTTPRoute))
	if err != nil {
		t.Fatal(err)
	}
	scripts[trafficrouting.ProviderHTTPRoute] = string(httpRoute)
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	defaults := trafficrouting.DefaultDefaults()
	providers := trafficrouting.Providers{
		IngressClasses: map[string]trafficrouting.Provider{"mse": trafficrouting.ProviderMSE, "higress": trafficrouting.ProviderHigress},
		HTTPRoute:      true,
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if seen[c.Name] {
				t.Fatal("two cases have this name")
			}
			seen[c.Name] = true
			switch c.Kind {
			case "":
				c.Kind = "TrafficRouting"
			case "TrafficRouting", "Rollout":
			default:
				t.Fatalf("kind %q: use TrafficRouting or Rollout", c.Kind)
			}
			if c.Refused != nil && c.Warns != "" {
				t.Fatal("a case is refused or warns, not both")
			}
			if c.Refused != nil && (c.Refused.Webhook == "" || (c.Refused.Script == "") != c.WebhookOnly) {
				t.Fatal("a refusal needs the webhook's sentence, and the script's unless webhookOnly")
			}
			tr := c.lane(t)
			reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tr.DeepCopy(), admissionIngress(string(c.Provider))).Build()

			// The script, replayed as Kruise runs the object's steps.
			var scriptErr error
			switch c.Provider {
			case trafficrouting.ProviderHTTPRoute:
				run := &CustomNetworkCase{Original: admissionHTTPRoute}
				if c.Kind == "Rollout" {
					run.Rollout = c.member(t)
				} else {
					run.TrafficRouting = tr
				}
				_, _, _, scriptErr = run.Run(scripts[c.Provider])
			default:
				run := &IngressCase{Original: admissionIngress(string(c.Provider))}
				if c.Kind == "Rollout" {
					run.Rollout = c.member(t)
				} else {
					run.TrafficRouting = tr
				}
				_, scriptErr = run.Run(scripts[c.Provider])
			}
			var se *ScriptError
			if scriptErr != nil && !errors.As(scriptErr, &se) {
				t.Fatalf("the case's input could not be given to the script: %v", scriptErr)
			}

			// The validator, as the webhook calls it.
			var verdict trafficrouting.Verdict
			if c.Kind == "Rollout" {
				verdict, err = trafficrouting.ValidateRollout(t.Context(), reader, c.member(t), defaults, providers)
			} else {
				verdict, err = trafficrouting.ValidateTrafficRouting(t.Context(), reader, tr, defaults, providers)
			}
			if err != nil {
				t.Fatalf("the validator could not judge the case: %v", err)
			}
			// The reconciler, on the lane.
			_, resolveErr := trafficrouting.ResolveWithEntry(t.Context(), reader, tr, defaults)
			if resolveErr != nil && !errors.Is(resolveErr, trafficrouting.ErrMisconfigured) {
				t.Fatalf("the reconciler could not resolve the lane: %v", resolveErr)
			}

			if c.WebhookOnly {
				if scriptErr != nil {
					t.Errorf("a webhookOnly case, but the script refused the step: %s", ErrorMessage(scriptErr))
				}
				if c.Kind == "TrafficRouting" && (verdict.Err == nil) != (resolveErr == nil) {
					t.Errorf("the validator says %v but the reconciler says %v", verdict.Err, resolveErr)
				}
			} else {
				if resolveErr != nil {
					t.Errorf("the lane itself is refused by the reconciler (%v): a provider case needs a lane that resolves", resolveErr)
				}
				if (scriptErr == nil) != (verdict.Err == nil) {
					t.Errorf("they disagree: the script says %v, the validator %v", scriptMsg(scriptErr), verdict.Err)
				}
			}
			checkOutcome(t, c, verdict, scriptErr, resolveErr)
		})
	}
	t.Logf("%d cases", len(cases))
}

func scriptMsg(err error) any {
	if err == nil {
		return "<accepted>"
	}
	return ErrorMessage(err)
}

// checkOutcome checks each judge against the case's outcome.
func checkOutcome(t *testing.T, c laneAdmissionCase, verdict trafficrouting.Verdict, scriptErr, resolveErr error) {
	t.Helper()
	if c.Refused == nil {
		if verdict.Err != nil {
			t.Errorf("the validator refused: %v", verdict.Err)
		}
		if scriptErr != nil {
			t.Errorf("the script refused: %s", ErrorMessage(scriptErr))
		}
		switch {
		case c.Warns == "" && len(verdict.Warnings) > 0:
			t.Errorf("the validator warned %q, want no warning", verdict.Warnings)
		case c.Warns != "" && !containsAny(verdict.Warnings, c.Warns):
			t.Errorf("the validator warned %q, want a warning containing %q", verdict.Warnings, c.Warns)
		}
		return
	}
	if verdict.Err == nil {
		t.Errorf("the validator accepted, want a refusal containing %q", c.Refused.Webhook)
	} else if !strings.Contains(verdict.Err.Error(), c.Refused.Webhook) {
		t.Errorf("the validator's refusal %q does not contain %q", verdict.Err, c.Refused.Webhook)
	}
	if c.WebhookOnly {
		if c.Kind == "TrafficRouting" && resolveErr != nil && !strings.Contains(resolveErr.Error(), c.Refused.Webhook) {
			t.Errorf("the reconciler's refusal %q does not contain %q", resolveErr, c.Refused.Webhook)
		}
		return
	}
	if scriptErr == nil {
		t.Errorf("the script accepted, want a refusal containing %q", c.Refused.Script)
		return
	}
	prefix := "step 1: " + string(c.Provider) + " ingress provider: "
	if c.Provider == trafficrouting.ProviderHTTPRoute {
		prefix = "step 1: httproute provider: "
	}
	if msg := ErrorMessage(scriptErr); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, c.Refused.Script) {
		t.Errorf("the script's refusal %q does not start with %q or does not contain %q", msg, prefix, c.Refused.Script)
	}
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
