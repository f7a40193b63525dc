package plugin

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

// TestCustomNetworkInputKeys pins the keys Kruise v0.6.2's converter gives a custom network
// script's `obj` and its `obj.data`.
func TestCustomNetworkInputKeys(t *testing.T) {
	obj, err := CustomNetworkInput{
		Data:         CustomNetworkData{Spec: map[string]any{"rules": []any{}}, Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"}},
		CanaryWeight: NoCanaryWeight,
		StableWeight: 101,
	}.ToLuaObject()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"canaryService", "canaryWeight", "data", "matches", "requestHeaderModifier", "stableService", "stableWeight"}
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(obj))); diff != "" {
		t.Errorf("input keys (-want +got):\n%s", diff)
	}
	data, ok := obj["data"].(map[string]any)
	if !ok {
		t.Fatalf("data is %T, want an object", obj["data"])
	}
	if diff := cmp.Diff([]string{"annotations", "labels", "spec"}, slices.Sorted(maps.Keys(data))); diff != "" {
		t.Errorf("data keys (-want +got):\n%s", diff)
	}
	if w, ok := obj["canaryWeight"].(int64); !ok || w != -1 {
		t.Errorf("canaryWeight = %#v, want the number -1", obj["canaryWeight"])
	}
}

// TestCustomNetworkScriptSeesInput runs a probe script that echoes what it reads, so a renamed
// key shows up as a missing value rather than as a silent default in the provider.
func TestCustomNetworkScriptSeesInput(t *testing.T) {
	probe := `return {spec = {w = obj.canaryWeight, s = obj.stableWeight, c = obj.canaryService, st = obj.stableService,
		h = obj.matches[1].headers[1].name, set = obj.requestHeaderModifier.set[1].value, r = obj.data.spec.rules[1]},
		labels = obj.data.labels, annotations = obj.data.annotations}`
	exact := gatewayv1beta1.HeaderMatchExact
	out, err := RunCustomNetworkScript(probe, CustomNetworkInput{
		Data:                  CustomNetworkData{Spec: map[string]any{"rules": []any{"r1"}}, Labels: map[string]string{"app": "demo"}},
		CanaryWeight:          30,
		StableWeight:          70,
		Matches:               []rolloutsv1beta1.HttpRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{{Type: &exact, Name: "x-user", Value: "alice"}}}},
		CanaryService:         "demo-canary",
		StableService:         "demo",
		RequestHeaderModifier: &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: "gray"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := CustomNetworkData{
		Spec:   map[string]any{"w": float64(30), "s": float64(70), "c": "demo-canary", "st": "demo", "h": "x-user", "set": "gray", "r": "r1"},
		Labels: map[string]string{"app": "demo"},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("what the script read (-want +got):\n%s", diff)
	}
}

func TestRunCustomNetworkScriptRejectsNonTable(t *testing.T) {
	_, err := RunCustomNetworkScript(`return 42`, CustomNetworkInput{CanaryWeight: NoCanaryWeight})
	var scriptErr *ScriptError
	if !errors.As(err, &scriptErr) || !strings.Contains(err.Error(), "expect table output") {
		t.Fatalf("error %v, want a ScriptError about the table output", err)
	}
}

// TestHTTPRouteRefusalIsASentence: a refusal reaches the user as the script's sentence, without
// a Lua traceback, through the same ScriptError Kruise's error carries.
func TestHTTPRouteRefusalIsASentence(t *testing.T) {
	script, err := luascripts.CustomNetwork("httproute")
	if err != nil {
		t.Fatal(err)
	}
	_, err = RunCustomNetworkScript(string(script), CustomNetworkInput{CanaryWeight: 10, StableWeight: 90, StableService: "demo"})
	var scriptErr *ScriptError
	if !errors.As(err, &scriptErr) {
		t.Fatalf("error %v is not a ScriptError", err)
	}
	if got, want := scriptErr.Message(), "httproute provider: Kruise passed no spec of the HTTPRoute"; !strings.HasPrefix(got, want) {
		t.Errorf("Message() = %q, want it to start with %q", got, want)
	}
}

func TestCustomNetworkPlanNeedsOneRef(t *testing.T) {
	ro := &rolloutsv1beta1.Rollout{Spec: rolloutsv1beta1.RolloutSpec{Strategy: rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{
		TrafficRoutings: []rolloutsv1beta1.TrafficRoutingRef{{Service: "demo", Ingress: &rolloutsv1beta1.IngressTrafficRouting{Name: "demo"}}},
	}}}}
	if _, err := CustomNetworkPlanForRollout(ro); !errors.Is(err, ErrNoCustomNetworkRouting) {
		t.Errorf("error %v, want ErrNoCustomNetworkRouting", err)
	}
	ro.Spec.Strategy.Canary.TrafficRoutings[0].CustomNetworkRefs = []rolloutsv1beta1.ObjectRef{{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute", Name: "demo"}}
	ro.Spec.Strategy.Canary.DisableGenerateCanaryService = true
	plan, err := CustomNetworkPlanForRollout(ro)
	if err != nil {
		t.Fatal(err)
	}
	if plan.CanaryService != "demo" {
		t.Errorf("canary Service %q with disableGenerateCanaryService, want the stable Service demo", plan.CanaryService)
	}
}
