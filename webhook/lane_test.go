package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

func laneValidator(t *testing.T) *LaneValidator {
	t.Helper()
	s := newScheme(t)
	lane := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lane", Annotations: map[string]string{trafficrouting.AnnotationTag: "gray"}}}
	reader := fake.NewClientBuilder().WithScheme(s).WithObjects(lane).Build()
	providers := trafficrouting.Providers{IngressClasses: map[string]trafficrouting.Provider{"mse": trafficrouting.ProviderMSE}}
	return NewLaneValidator(reader, s, trafficrouting.DefaultDefaults(), providers)
}

func laneRequest(t *testing.T, op admissionv1.Operation, version, kind, object string) admission.Request {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(object), &obj); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: op, Namespace: "shop",
		Kind:   metav1.GroupVersionKind{Group: "rollouts.kruise.io", Version: version, Kind: kind},
		Object: runtime.RawExtension{Raw: raw},
	}}
}

// The objects below route to the mse Ingress "web"; a step ORing two headers is beyond it, one
// with a header and a weight is accepted with a warning.
const (
	orStrategy   = `{"matches":[{"headers":[{"name":"x-a","value":"1"}]},{"headers":[{"name":"x-b","value":"1"}]}]}`
	bothStrategy = `{"weight":20,"matches":[{"headers":[{"name":"x-a","value":"1"}]}],"requestHeaderModifier":{"set":[{"name":"x-mse-tag","value":"gray"}]}}`
	mseRef       = `{"service":"web","ingress":{"classType":"mse","name":"web"}}`
)

func TestLaneValidatorHandle(t *testing.T) {
	cases := map[string]struct {
		req        func(t *testing.T) admission.Request
		allowed    bool
		code       int32
		message    string
		warning    string
		noWarnings bool
	}{
		"a TrafficRouting its provider cannot express is denied with the sentence": {
			req: func(t *testing.T) admission.Request {
				return laneRequest(t, admissionv1.Create, "v1alpha1", "TrafficRouting",
					`{"apiVersion":"rollouts.kruise.io/v1alpha1","kind":"TrafficRouting","metadata":{"name":"or","annotations":{"kruise-lanes.io/tag":"gray"}},"spec":{"objectRef":[`+mseRef+`],"strategy":`+orStrategy+`}}`)
			},
			code:    http.StatusForbidden,
			message: "lane shop/or is misconfigured: the provider of its entry cannot express spec.strategy",
		},
		"a surprising TrafficRouting update is allowed with a warning": {
			req: func(t *testing.T) admission.Request {
				return laneRequest(t, admissionv1.Update, "v1alpha1", "TrafficRouting",
					`{"apiVersion":"rollouts.kruise.io/v1alpha1","kind":"TrafficRouting","metadata":{"name":"both"},"spec":{"objectRef":[`+mseRef+`],"strategy":`+bothStrategy+`}}`)
			},
			allowed: true,
			warning: "kruise-lanes: spec.strategy has both matches and a weight (20%)",
		},
		"a v1alpha1 member Rollout is judged after conversion": {
			req: func(t *testing.T) admission.Request {
				return laneRequest(t, admissionv1.Create, "v1alpha1", "Rollout",
					`{"apiVersion":"rollouts.kruise.io/v1alpha1","kind":"Rollout","metadata":{"name":"web","annotations":{"rollouts.kruise.io/trafficrouting":"lane"}},
					"spec":{"objectRef":{"workloadRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"}},"strategy":{"canary":{"trafficRoutings":[`+mseRef+`],"steps":[`+strings.TrimSuffix(orStrategy, "}")+`,"replicas":1}]}}}}`)
			},
			code:    http.StatusForbidden,
			message: "rollout shop/web, a member of lane lane, is misconfigured",
		},
		"a Rollout in no lane is not judged": {
			req: func(t *testing.T) admission.Request {
				return laneRequest(t, admissionv1.Create, "v1beta1", "Rollout",
					`{"apiVersion":"rollouts.kruise.io/v1beta1","kind":"Rollout","metadata":{"name":"web"},
					"spec":{"workloadRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"strategy":{"canary":{"trafficRoutings":[`+mseRef+`],"steps":[`+strings.TrimSuffix(orStrategy, "}")+`,"replicas":1}]}}}}`)
			},
			allowed:    true,
			noWarnings: true,
		},
		"a member of a lane that does not exist is allowed with a warning": {
			req: func(t *testing.T) admission.Request {
				return laneRequest(t, admissionv1.Create, "v1beta1", "Rollout",
					`{"apiVersion":"rollouts.kruise.io/v1beta1","kind":"Rollout","metadata":{"name":"web","annotations":{"rollouts.kruise.io/trafficrouting":"nolane"}},
					"spec":{"workloadRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"strategy":{"canary":{"steps":[{"replicas":1}]}}}}`)
			},
			allowed: true,
			warning: "no TrafficRouting shop/nolane exists",
		},
		"deletes are not judged": {
			req: func(*testing.T) admission.Request {
				return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Delete,
					Kind: metav1.GroupVersionKind{Group: "rollouts.kruise.io", Version: "v1alpha1", Kind: "TrafficRouting"}}}
			},
			allowed:    true,
			noWarnings: true,
		},
		"an object that does not decode is a bad request": {
			req: func(t *testing.T) admission.Request {
				r := laneRequest(t, admissionv1.Create, "v1alpha1", "TrafficRouting", `{}`)
				r.Object.Raw = []byte(`{"spec":`)
				return r
			},
			code: http.StatusBadRequest,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			resp := laneValidator(t).Handle(t.Context(), c.req(t))
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed %v, want %v (%+v)", resp.Allowed, c.allowed, resp.Result)
			}
			if !c.allowed && resp.Result.Code != c.code {
				t.Errorf("code %d, want %d (%s)", resp.Result.Code, c.code, resp.Result.Message)
			}
			if c.message != "" && !strings.Contains(resp.Result.Message, c.message) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, c.message)
			}
			if c.warning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), c.warning) {
				t.Errorf("warnings %q do not contain %q", resp.Warnings, c.warning)
			}
			if c.noWarnings && len(resp.Warnings) > 0 {
				t.Errorf("warnings %q, want none", resp.Warnings)
			}
		})
	}
}
