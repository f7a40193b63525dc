//go:build e2e

package e2e

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/plugin"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// httpRouteAPIVersion is the version the entry route is created, read and referenced with.
const httpRouteAPIVersion = "gateway.networking.k8s.io/v1"

// installHTTPRouteProvider puts our httproute provider into Kruise's ConfigMap (key
// lua.traffic.routing.HTTPRoute.gateway.networking.k8s.io), where Kruise looks it up for an
// HTTPRoute named in customNetworkRefs.
func installHTTPRouteProvider(t *testing.T) {
	t.Helper()
	p, ok := luascripts.CustomNetworkProviderNamed("httproute")
	if !ok {
		t.Fatal("no httproute provider")
	}
	script, err := luascripts.CustomNetwork(p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.SetKruiseConfiguration(t.Context(), cluster.Client, p.Key(), string(script)); err != nil {
		t.Fatal(err)
	}
}

// httpRoute converts a typed HTTPRoute spec to the unstructured object the client sends: the
// suite's scheme does not carry Gateway API types, and the v1 schema accepts the v1beta1 shape.
func httpRoute(namespace, name string, spec gatewayv1beta1.HTTPRouteSpec) *unstructured.Unstructured {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&spec)
	if err != nil {
		panic(err) // a typed spec always converts
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": obj}}
	u.SetAPIVersion(httpRouteAPIVersion)
	u.SetKind("HTTPRoute")
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// routeSpecJSON is a typed spec in the shape the API server returns it (int64 numbers).
func routeSpecJSON(t *testing.T, spec gatewayv1beta1.HTTPRouteSpec) map[string]any {
	t.Helper()
	return httpRoute("", "x", spec).Object["spec"].(map[string]any)
}

// waitRouteSpec waits until the HTTPRoute's spec is want and returns the route.
func waitRouteSpec(t *testing.T, key client.ObjectKey, what string, want map[string]any) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(httpRouteAPIVersion)
	u.SetKind("HTTPRoute")
	err := framework.WaitFor(t.Context(), stepTimeout, what, func(ctx context.Context) (bool, error) {
		if err := cluster.Client.Get(ctx, key, u); err != nil {
			return false, err
		}
		if diff := cmp.Diff(want, u.Object["spec"]); diff != "" {
			return false, framework.Pending("HTTPRoute spec (-want +got):\n%s", diff)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestHTTPRouteEntryProvider releases a Deployment through a partition-style v1beta1 Rollout whose
// traffic goes through an HTTPRoute named in customNetworkRefs, with our httproute provider in
// Kruise's ConfigMap and the Gateway API CRDs judging every write. Step 1 (User-Agent xiaoming,
// x-mse-tag gray) adds a rule for the lane's requests to demo-canary with the header set; step 2
// (30%) splits the stable backendRef and puts the header filter on the canary backendRef; after
// approval to completion the route is exactly what the user wrote.
func TestHTTPRouteEntryProvider(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := cluster.Client
	ns := cluster.Namespace(t)
	const (
		name     = "demo"
		oldImage = "example.com/demo:v1"
		newImage = "example.com/demo:v2"
		replicas = 4
	)
	key := client.ObjectKey{Namespace: ns, Name: name}
	installHTTPRouteProvider(t)

	// The stable route as the user writes it, fully spelled out so that it equals what the API
	// server stores after defaulting.
	backend := func(svc string, weight *int32, filters ...gatewayv1beta1.HTTPRouteFilter) gatewayv1beta1.HTTPBackendRef {
		return gatewayv1beta1.HTTPBackendRef{
			BackendRef: gatewayv1beta1.BackendRef{
				BackendObjectReference: gatewayv1beta1.BackendObjectReference{
					Group: ptr.To(gatewayv1beta1.Group("")), Kind: ptr.To(gatewayv1beta1.Kind("Service")),
					Name: gatewayv1beta1.ObjectName(svc), Port: ptr.To(gatewayv1beta1.PortNumber(20001)),
				},
				Weight: weight,
			},
			Filters: filters,
		}
	}
	laneHeader := gatewayv1beta1.HTTPRouteFilter{
		Type:                  gatewayv1beta1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: "gray"}}},
	}
	root := gatewayv1beta1.HTTPRouteMatch{Path: &gatewayv1beta1.HTTPPathMatch{Type: ptr.To(gatewayv1beta1.PathMatchPathPrefix), Value: ptr.To("/")}}
	stableRule := gatewayv1beta1.HTTPRouteRule{Matches: []gatewayv1beta1.HTTPRouteMatch{root}, BackendRefs: []gatewayv1beta1.HTTPBackendRef{backend(name, ptr.To[int32](1))}}
	staticRule := gatewayv1beta1.HTTPRouteRule{
		Matches:     []gatewayv1beta1.HTTPRouteMatch{{Path: &gatewayv1beta1.HTTPPathMatch{Type: ptr.To(gatewayv1beta1.PathMatchPathPrefix), Value: ptr.To("/static")}}},
		BackendRefs: []gatewayv1beta1.HTTPBackendRef{backend("cdn", ptr.To[int32](1))},
	}
	parent := gatewayv1beta1.ParentReference{Group: ptr.To(gatewayv1beta1.Group("gateway.networking.k8s.io")), Kind: ptr.To(gatewayv1beta1.Kind("Gateway")), Name: "public"}
	stableSpec := gatewayv1beta1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1beta1.CommonRouteSpec{ParentRefs: []gatewayv1beta1.ParentReference{parent}},
		Hostnames:       []gatewayv1beta1.Hostname{"shop.example.com"},
		Rules:           []gatewayv1beta1.HTTPRouteRule{stableRule, staticRule},
	}
	route := httpRoute(ns, name, stableSpec)
	route.SetLabels(map[string]string{"app": name})
	route.SetAnnotations(map[string]string{"team": "shop"})

	for _, obj := range []client.Object{deployment(ns, name, oldImage, replicas), service(ns, name), route} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("creating %s: %v", obj.GetName(), err)
		}
	}
	original := waitRouteSpec(t, key, "the stable HTTPRoute as written", routeSpecJSON(t, stableSpec)).DeepCopy()

	headerMatch := gatewayv1beta1.HTTPHeaderMatch{Type: ptr.To(gatewayv1beta1.HeaderMatchExact), Name: "User-Agent", Value: "xiaoming"}
	modifier := &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: "gray"}}}
	ro := &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Strategy: rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{
				TrafficRoutings: []rolloutsv1beta1.TrafficRoutingRef{{
					Service:            name,
					GracePeriodSeconds: 1,
					CustomNetworkRefs:  []rolloutsv1beta1.ObjectRef{{APIVersion: httpRouteAPIVersion, Kind: "HTTPRoute", Name: name}},
				}},
				Steps: []rolloutsv1beta1.CanaryStep{
					{
						TrafficRoutingStrategy: rolloutsv1beta1.TrafficRoutingStrategy{
							Matches:               []rolloutsv1beta1.HttpRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{headerMatch}}},
							RequestHeaderModifier: modifier,
						},
						Replicas: ptr.To(intstr.FromInt32(1)),
						Pause:    rolloutsv1beta1.RolloutPause{},
					},
					{
						TrafficRoutingStrategy: rolloutsv1beta1.TrafficRoutingStrategy{Traffic: ptr.To("30%"), RequestHeaderModifier: modifier},
						Replicas:               ptr.To(intstr.FromInt32(2)),
						Pause:                  rolloutsv1beta1.RolloutPause{},
					},
					{Replicas: ptr.To(intstr.FromString("100%")), Pause: rolloutsv1beta1.RolloutPause{}},
				},
			}},
		},
	}
	releaseWithRollout(t, ro, newImage)

	// Step 1: the user's rules as they were, then the lane rule: the stable rule's match AND the
	// header, to demo-canary, with the lane header set on the rule.
	if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
		t.Fatal(err)
	}
	laneMatch := root
	laneMatch.Headers = []gatewayv1beta1.HTTPHeaderMatch{headerMatch}
	step1 := stableSpec
	step1.Rules = []gatewayv1beta1.HTTPRouteRule{stableRule, staticRule, {
		Matches:     []gatewayv1beta1.HTTPRouteMatch{laneMatch},
		Filters:     []gatewayv1beta1.HTTPRouteFilter{laneHeader},
		BackendRefs: []gatewayv1beta1.HTTPBackendRef{backend(name+"-canary", ptr.To[int32](1))},
	}}
	got := waitRouteSpec(t, key, "step 1: the lane rule to demo-canary with x-mse-tag set", routeSpecJSON(t, step1))
	if got.GetAnnotations()[plugin.OriginalSpecAnnotation] == "" {
		t.Errorf("step 1: Kruise did not save the original in %s; annotations %v", plugin.OriginalSpecAnnotation, got.GetAnnotations())
	}
	if diff := cmp.Diff(original.GetLabels(), got.GetLabels()); diff != "" {
		t.Errorf("step 1 changed the route's labels (-original +got):\n%s", diff)
	}
	if err := framework.ApproveRollout(ctx, c, key); err != nil {
		t.Fatal(err)
	}

	// Step 2: no lane rule any more; the stable backendRef split 70/30, the canary one carrying the
	// lane header as a backendRef-level filter.
	if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to pause at step 2", framework.RolloutPausedAt(2)); err != nil {
		t.Fatal(err)
	}
	split := stableRule
	split.BackendRefs = []gatewayv1beta1.HTTPBackendRef{backend(name, ptr.To[int32](70)), backend(name+"-canary", ptr.To[int32](30), laneHeader)}
	step2 := stableSpec
	step2.Rules = []gatewayv1beta1.HTTPRouteRule{split, staticRule}
	waitRouteSpec(t, key, "step 2: stable 70, canary 30 with x-mse-tag set on its backendRef", routeSpecJSON(t, step2))
	if err := framework.ApproveRollout(ctx, c, key); err != nil {
		t.Fatal(err)
	}

	// Completion: the route is exactly the original, Kruise's annotation gone.
	if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
		t.Fatal(err)
	}
	restored := waitRouteSpec(t, key, "the original route after the release", original.Object["spec"].(map[string]any))
	if diff := cmp.Diff(original.GetAnnotations(), restored.GetAnnotations()); diff != "" {
		t.Errorf("annotations after the release (-original +got):\n%s", diff)
	}
	if diff := cmp.Diff(original.GetLabels(), restored.GetLabels()); diff != "" {
		t.Errorf("labels after the release (-original +got):\n%s", diff)
	}
}
