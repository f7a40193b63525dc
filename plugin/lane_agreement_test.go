package plugin

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/openkruise/rollouts/api/v1alpha1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// laneAgreementCase is one row of testdata/lane_agreement.yaml (its header says what each field
// means).
type laneAgreementCase struct {
	Name           string `json:"name"`
	TrafficRouting struct {
		Annotations map[string]string           `json:"annotations"`
		Set         []gatewayv1beta1.HTTPHeader `json:"set"`
	} `json:"trafficRouting"`
	Ingress    map[string]string `json:"ingress"`
	LaneHeader string            `json:"laneHeader"`
	Want       *struct {
		Tag    string `json:"tag"`
		Header string `json:"header"`
	} `json:"want"`
	Refused *struct {
		LanesManager string `json:"lanesManager"`
		Script       string `json:"script"`
		ScriptSubset string `json:"scriptSubset"`
	} `json:"refused"`
}

func (c laneAgreementCase) objects() (*v1alpha1.TrafficRouting, *netv1.Ingress) {
	tr := &v1alpha1.TrafficRouting{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lane", Annotations: c.TrafficRouting.Annotations},
		Spec: v1alpha1.TrafficRoutingSpec{
			ObjectRef: []v1alpha1.TrafficRoutingRef{{Service: "web", Ingress: &v1alpha1.IngressTrafficRouting{ClassType: "mse", Name: "web"}}},
			Strategy:  v1alpha1.TrafficRoutingStrategy{Matches: []v1alpha1.HttpRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{{Name: "x-user", Value: "tester"}}}}},
		},
	}
	if len(c.TrafficRouting.Set) > 0 {
		tr.Spec.Strategy.RequestHeaderModifier = &gatewayv1beta1.HTTPHeaderFilter{Set: c.TrafficRouting.Set}
	}
	ing := &netv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: c.Ingress},
		Spec: netv1.IngressSpec{Rules: []netv1.IngressRule{{Host: "shop.example.com", IngressRuleValue: netv1.IngressRuleValue{HTTP: &netv1.HTTPIngressRuleValue{
			Paths: []netv1.HTTPIngressPath{{Path: "/", Backend: netv1.IngressBackend{Service: &netv1.IngressServiceBackend{Name: "web", Port: netv1.ServiceBackendPort{Number: 80}}}}},
		}}}}},
	}
	return tr, ing
}

// TestLaneAgreement runs every case of testdata/lane_agreement.yaml through lanes-manager's lane
// resolution and through the mse provider script (installed with the case's --lane-header) on
// Kruise's Lua runtime, and checks both against the case: the tag the manager labels pods with is
// the service-subset the script writes, or the lane is refused.
func TestLaneAgreement(t *testing.T) {
	data, err := os.ReadFile("testdata/lane_agreement.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []laneAgreementCase
	if err := yaml.UnmarshalStrict(data, &cases); err != nil {
		t.Fatalf("testdata/lane_agreement.yaml: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("testdata/lane_agreement.yaml has no cases")
	}
	builtin, err := luascripts.Ingress("mse")
	if err != nil {
		t.Fatal(err)
	}
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if (c.Want == nil) == (c.Refused == nil) {
				t.Fatal("a case needs exactly one of want and refused")
			}
			defaults := trafficrouting.DefaultDefaults()
			if c.LaneHeader != "" {
				defaults.LaneHeader = c.LaneHeader
			}
			tr, ing := c.objects()

			// lanes-manager: the lane as the webhook and the reconciler resolve it.
			reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(ing.DeepCopy()).Build()
			lane, goErr := trafficrouting.ResolveWithEntry(t.Context(), reader, tr, defaults)
			if goErr != nil && !errors.Is(goErr, trafficrouting.ErrMisconfigured) {
				t.Fatalf("lanes-manager could not resolve the lane: %v", goErr)
			}

			// The script, as the installer writes it for these defaults.
			script, err := luascripts.WithDefaultLaneHeader(builtin, defaults.LaneHeader)
			if err != nil {
				t.Fatal(err)
			}
			steps, luaErr := (&IngressCase{TrafficRouting: tr, Original: ing}).Run(string(script))
			subset, hasSubset := "", false
			if luaErr == nil {
				if len(steps) != 1 || steps[0].NoCanaryIngress {
					t.Fatalf("script steps %+v, want one canary Ingress", steps)
				}
				subset, hasSubset = steps[0].Annotations[trafficrouting.AnnotationServiceSubset]
			}
			_, asksSubset := c.Ingress[trafficrouting.AnnotationServiceSubset]

			if c.Want != nil {
				if goErr != nil {
					t.Fatalf("lanes-manager refused the lane: %v", goErr)
				}
				if lane.Tag != c.Want.Tag || lane.Header != c.Want.Header {
					t.Errorf("lanes-manager: tag %q header %q, want tag %q header %q", lane.Tag, lane.Header, c.Want.Tag, c.Want.Header)
				}
				if luaErr != nil {
					t.Fatalf("the script refused the step: %s", ErrorMessage(luaErr))
				}
				switch {
				case asksSubset && subset != c.Want.Tag:
					t.Errorf("the script wrote service-subset %q, want the lane tag %q", subset, c.Want.Tag)
				case !asksSubset && hasSubset:
					t.Errorf("the script wrote service-subset %q, which the Ingress does not ask for", subset)
				}
				return
			}
			if goErr == nil {
				t.Errorf("lanes-manager accepted the lane (tag %q header %q), want a refusal containing %q", lane.Tag, lane.Header, c.Refused.LanesManager)
			} else if !strings.Contains(goErr.Error(), c.Refused.LanesManager) {
				t.Errorf("lanes-manager's refusal %q does not contain %q", goErr, c.Refused.LanesManager)
			}
			switch {
			case c.Refused.Script != "" && c.Refused.ScriptSubset != "":
				t.Fatal("a refusal names either the script's sentence or the subset it writes, not both")
			case c.Refused.Script != "":
				if luaErr == nil {
					t.Errorf("the script wrote service-subset %q, want a refusal containing %q", subset, c.Refused.Script)
				} else if msg := ErrorMessage(luaErr); !strings.HasPrefix(msg, "step 1: mse ingress provider: ") || !strings.Contains(msg, c.Refused.Script) {
					t.Errorf("the script's refusal %q does not start with the provider's prefix or does not contain %q", msg, c.Refused.Script)
				}
			case c.Refused.ScriptSubset != "":
				if luaErr != nil {
					t.Errorf("the script refused the step (%s), want service-subset %q", ErrorMessage(luaErr), c.Refused.ScriptSubset)
				} else if subset != c.Refused.ScriptSubset {
					t.Errorf("the script wrote service-subset %q, want %q", subset, c.Refused.ScriptSubset)
				}
			default:
				t.Fatal("a refusal needs the script's sentence or the subset it writes")
			}
		})
	}
}
