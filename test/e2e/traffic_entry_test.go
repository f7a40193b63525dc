//go:build e2e

package e2e

import (
	"math"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The entry scenarios send requests through Traefik, as a user's curl would reach the gateway.
// Traefik routes a request to the entry Service as a whole: it has no notion of MSE's
// service-subset (the pod-label subset the MSE gateway picks for A), so at the first hop a lane
// request may reach A's base or A's canary; every later hop is routed by istiod from the lane
// header. The scenarios assert exactly that (see docs/mesh.md, "What each data plane does").

// mseIngressClass makes Traefik's ingress-nginx provider serve Ingresses of class mse, the
// class seed 002's Ingress names.
func mseIngressClass(t *testing.T) {
	t.Helper()
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "mse"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	if err := cluster.Client.Create(t.Context(), ic); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// oneOf accepts an answer equal to one of want.
func oneOf(want ...string) func(string) bool {
	return func(s string) bool {
		for _, w := range want {
			if s == w {
				return true
			}
		}
		return false
	}
}

// expectOnly sends n requests and fails unless each is answered with one of want; it returns how
// often each was seen.
func expectOnly(t *testing.T, what string, send framework.Sender, n int, want ...string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	ok := oneOf(want...)
	for _, r := range framework.Sample(t.Context(), send, n) {
		if r.Failed() || !ok(r.Body) {
			t.Fatalf("%s: got %s, want one of %q", what, r, want)
		}
		seen[r.Body]++
	}
	t.Logf("%s: %v", what, seen)
	return seen
}

// TestTrafficSeed002Ingress (scenario a): seed 002's lane with its Ingress entry as published
// (class mse, our mse provider in Kruise), served by Traefik's ingress-nginx provider, the hops
// routed by istiod. Three request loops run through the whole lifecycle (release, `kubectl lanes
// approve`, a second release, `kubectl lanes rollback`) and none of their requests may fail:
// without any header; with User-Agent: xiaoming (the lane's match); with x-mse-tag: gray (the
// header the MSE gateway sets for that match). Traefik skips a canary Ingress that names the
// stable Service, which a lane's canary Ingress always does, and it reads no mse.* key: so on
// Traefik the lane's entry rule does nothing, and lane requests must carry the header themselves.
func TestTrafficSeed002Ingress(t *testing.T) {
	ns := trafficScenario(t)
	mseIngressClass(t)
	installMSEProvider(t)
	for _, obj := range laneEntry(ns, chain[0], func(tr *rolloutsv1alpha1.TrafficRouting) {
		tr.Annotations = map[string]string{trafficrouting.AnnotationMesh: "istio"}
	}) {
		if err := cluster.Client.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	deployChain(t, ns, "lane", trafficrouting.LabelMSE, nil)
	gw := cluster.StartTraefik(t, framework.TraefikOptions{Namespace: ns, IngressClass: "mse"})
	a, c := chain[0], chain[2]

	plain := framework.HTTPSender(gw.URL+"/", "", nil)
	matched := framework.HTTPSender(gw.URL+"/", "", map[string]string{"User-Agent": "xiaoming"})
	tagged := framework.HTTPSender(gw.URL+"/", "", map[string]string{"x-mse-tag": "gray"})
	for what, send := range map[string]framework.Sender{"no header": plain, "User-Agent: xiaoming": matched, "x-mse-tag: gray": tagged} {
		expectAnswers(t, "before the release, "+what, send, allBaseV1)
	}
	loads := []*framework.Load{
		framework.StartLoad(t, "gateway requests without a header", plain, 40*time.Millisecond, 20000, 8*time.Minute),
		framework.StartLoad(t, "gateway requests with User-Agent: xiaoming", matched, 40*time.Millisecond, 20000, 8*time.Minute),
		framework.StartLoad(t, "gateway requests with x-mse-tag: gray", tagged, 40*time.Millisecond, 20000, 8*time.Minute),
	}

	releaseAC(t, ns, "v1", "v2")
	// Kruise wrote the lane's canary Ingress with our provider's canary keys.
	waitIngressAnnotations(t, ns, a+"-canary", map[string]string{
		"nginx.ingress.kubernetes.io/canary":                 "true",
		"nginx.ingress.kubernetes.io/canary-by-header":       "User-Agent",
		"nginx.ingress.kubernetes.io/canary-by-header-value": "xiaoming",
	})
	waitAnswers(t, "C's lane route in place", tagged, oneOf(answer("gray/v2", "base/v1", "gray/v2"), answer("base/v1", "base/v1", "gray/v2")))
	// The lane header reaches C's canary through istiod whichever A served it.
	seen := expectOnly(t, "A and C released, x-mse-tag: gray", tagged, 40,
		answer("gray/v2", "base/v1", "gray/v2"), answer("base/v1", "base/v1", "gray/v2"))
	if seen[answer("gray/v2", "base/v1", "gray/v2")] == 0 {
		t.Errorf("no lane request reached A's canary through Traefik in 40 tries: %v", seen)
	}
	// Traefik sets no header for the match (the MSE key it would come from is MSE-only), so a
	// request with only the User-Agent stays off the lane after A.
	expectOnly(t, "A and C released, User-Agent: xiaoming", matched, 40,
		answer("gray/v2", "base/v1", "base/v1"), answer("base/v1", "base/v1", "base/v1"))
	expectOnly(t, "A and C released, no header", plain, 40,
		answer("gray/v2", "base/v1", "base/v1"), answer("base/v1", "base/v1", "base/v1"))
	checkTrace(t, ns, "lane", traceLine("gray", "base", "gray"))

	if _, _, code := lanes(t, ns, "approve", "lane"); code != 0 {
		t.Fatalf("kubectl lanes approve: exit %d", code)
	}
	waitCompleted(t, ns, a, c)
	waitIngressGone(t, ns, a+"-canary")
	for what, send := range map[string]framework.Sender{"no header": plain, "User-Agent: xiaoming": matched, "x-mse-tag: gray": tagged} {
		expectAnswers(t, "after approval, "+what, send, allBaseV2)
	}
	checkTrace(t, ns, "lane", traceLine("base", "base", "base"))

	// A second release, given up with kubectl lanes rollback: everything back on v2.
	releaseAC(t, ns, "v2", "v3")
	waitAnswers(t, "the second release's lane", tagged, oneOf(answer("gray/v3", "base/v1", "gray/v3"), answer("base/v2", "base/v1", "gray/v3")))
	if _, _, code := lanes(t, ns, "rollback", "lane"); code != 0 {
		t.Fatalf("kubectl lanes rollback: exit %d", code)
	}
	if _, _, code := lanes(t, ns, "wait", "lane", "--for=healthy", "--timeout=120s", "--interval=500ms"); code != 0 {
		t.Fatalf("kubectl lanes wait --for=healthy after the rollback: exit %d", code)
	}
	for what, send := range map[string]framework.Sender{"no header": plain, "User-Agent: xiaoming": matched, "x-mse-tag: gray": tagged} {
		expectAnswers(t, "after the rollback, "+what, send, allBaseV2)
	}
	for _, l := range loads {
		l.CheckNoFailures(t, 100)
	}
}

// waitAnswers waits until 5 answers in a row are accepted by ok.
func waitAnswers(t *testing.T, what string, send framework.Sender, ok func(string) bool) {
	t.Helper()
	if _, err := framework.WaitForAnswers(t.Context(), stepTimeout, what, send, 5, ok); err != nil {
		t.Fatal(err)
	}
}

// gatewayEntry creates a GatewayClass served by Traefik, a Gateway on Traefik's entry port and
// the entry HTTPRoute shop-entry for shop.example.com to A.
func gatewayEntry(t *testing.T, ns string, gw *framework.Traefik) {
	t.Helper()
	class := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
		"metadata": map[string]any{"name": "traefik"},
		"spec":     map[string]any{"controllerName": framework.TraefikGatewayController},
	}}
	if err := cluster.Client.Create(t.Context(), class); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	gateway := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
		"metadata": map[string]any{"name": "public", "namespace": ns},
		"spec": map[string]any{
			"gatewayClassName": "traefik",
			"listeners":        []any{map[string]any{"name": "web", "protocol": "HTTP", "port": int64(gw.Port)}},
		},
	}}
	if err := cluster.Client.Create(t.Context(), gateway); err != nil {
		t.Fatal(err)
	}
	route := httpRoute(ns, "shop-entry", gatewayv1beta1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1beta1.CommonRouteSpec{ParentRefs: []gatewayv1beta1.ParentReference{{Name: "public"}}},
		Hostnames:       []gatewayv1beta1.Hostname{"shop.example.com"},
		Rules: []gatewayv1beta1.HTTPRouteRule{{
			Matches: []gatewayv1beta1.HTTPRouteMatch{{Path: &gatewayv1beta1.HTTPPathMatch{Type: ptr.To(gatewayv1beta1.PathMatchPathPrefix), Value: ptr.To("/")}}},
			BackendRefs: []gatewayv1beta1.HTTPBackendRef{{BackendRef: gatewayv1beta1.BackendRef{BackendObjectReference: gatewayv1beta1.BackendObjectReference{
				Name: gatewayv1beta1.ObjectName(chain[0]), Port: ptr.To(gatewayv1beta1.PortNumber(demoHTTPPort)),
			}}}},
		}},
	})
	if err := cluster.Client.Create(t.Context(), route); err != nil {
		t.Fatal(err)
	}
}

// gatewayLane creates the lane "lane" entered through shop-entry, routed by Istio east-west.
func gatewayLane(t *testing.T, ns string, strategy rolloutsv1alpha1.TrafficRoutingStrategy) {
	t.Helper()
	installHTTPRouteProvider(t)
	tr := &rolloutsv1alpha1.TrafficRouting{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lane", Annotations: map[string]string{trafficrouting.AnnotationMesh: "istio"}},
		Spec: rolloutsv1alpha1.TrafficRoutingSpec{
			ObjectRef: []rolloutsv1alpha1.TrafficRoutingRef{{Service: chain[0], CustomNetworkRefs: []rolloutsv1alpha1.CustomNetworkRef{{APIVersion: httpRouteAPIVersion, Kind: "HTTPRoute", Name: "shop-entry"}}}},
			Strategy:  strategy,
		},
	}
	if err := cluster.Client.Create(t.Context(), tr); err != nil {
		t.Fatal(err)
	}
}

// laneHeaderModifier sets x-mse-tag: gray on the lane's requests.
var laneHeaderModifier = &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: "gray"}}}

// TestTrafficGatewayAPIEntry (scenario b): the lane's entry is a Gateway API HTTPRoute served by
// Traefik's Gateway API provider, with our httproute provider in Kruise. The client sends only
// User-Agent: xiaoming; the gateway injects x-mse-tag: gray (the lane rule's
// RequestHeaderModifier), and the header reaches C's canary through istiod. Requests without it
// stay base after A. No request fails.
func TestTrafficGatewayAPIEntry(t *testing.T) {
	ns := trafficScenario(t)
	gw := cluster.StartTraefik(t, framework.TraefikOptions{Namespace: ns, GatewayAPI: true})
	gatewayEntry(t, ns, gw)
	gatewayLane(t, ns, rolloutsv1alpha1.TrafficRoutingStrategy{
		Matches:               []rolloutsv1alpha1.HttpRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{{Name: "User-Agent", Value: "xiaoming"}}}},
		RequestHeaderModifier: laneHeaderModifier,
	})
	deployChain(t, ns, "lane", trafficrouting.LabelIstio, nil)
	a, c := chain[0], chain[2]

	plain := framework.HTTPSender(gw.URL+"/", "shop.example.com", nil)
	matched := framework.HTTPSender(gw.URL+"/", "shop.example.com", map[string]string{"User-Agent": "xiaoming"})
	expectAnswers(t, "before the release, User-Agent: xiaoming", matched, allBaseV1)
	expectAnswers(t, "before the release, no header", plain, allBaseV1)
	loads := []*framework.Load{
		framework.StartLoad(t, "gateway requests without a header", plain, 40*time.Millisecond, 20000, 6*time.Minute),
		framework.StartLoad(t, "gateway requests with User-Agent: xiaoming", matched, 40*time.Millisecond, 20000, 6*time.Minute),
	}

	releaseAC(t, ns, "v1", "v2")
	waitAnswers(t, "the gateway's lane rule and C's lane route", matched, oneOf(answer("gray/v2", "base/v1", "gray/v2"), answer("base/v1", "base/v1", "gray/v2")))
	expectOnly(t, "A and C released, User-Agent: xiaoming (the gateway sets x-mse-tag)", matched, 40,
		answer("gray/v2", "base/v1", "gray/v2"), answer("base/v1", "base/v1", "gray/v2"))
	expectOnly(t, "A and C released, no header", plain, 40,
		answer("gray/v2", "base/v1", "base/v1"), answer("base/v1", "base/v1", "base/v1"))

	if _, _, code := lanes(t, ns, "approve", "lane"); code != 0 {
		t.Fatalf("kubectl lanes approve: exit %d", code)
	}
	waitCompleted(t, ns, a, c)
	expectAnswers(t, "after approval, User-Agent: xiaoming", matched, allBaseV2)
	expectAnswers(t, "after approval, no header", plain, allBaseV2)
	for _, l := range loads {
		l.CheckNoFailures(t, 100)
	}
}

// TestTrafficWeightedEntry (scenario c): a lane entered by weight: half of the requests without
// any header get x-mse-tag: gray at the gateway (the httproute provider's weighted split with
// the header on the canary backendRef, through Traefik), and exactly those reach C's canary
// through istiod. The share is checked against a binomial tolerance.
func TestTrafficWeightedEntry(t *testing.T) {
	ns := trafficScenario(t)
	gw := cluster.StartTraefik(t, framework.TraefikOptions{Namespace: ns, GatewayAPI: true})
	gatewayEntry(t, ns, gw)
	gatewayLane(t, ns, rolloutsv1alpha1.TrafficRoutingStrategy{Weight: ptr.To[int32](50), RequestHeaderModifier: laneHeaderModifier})
	deployChain(t, ns, "lane", trafficrouting.LabelIstio, nil)
	a, c := chain[0], chain[2]

	plain := framework.HTTPSender(gw.URL+"/", "shop.example.com", nil)
	expectAnswers(t, "before the release", plain, allBaseV1)
	load := framework.StartLoad(t, "gateway requests without a header", plain, 40*time.Millisecond, 20000, 6*time.Minute)
	releaseAC(t, ns, "v1", "v2")
	laneSeen := func(s string) bool { return strings.HasSuffix(s, "spring-cloud-c[gray](v2)") }
	if _, err := framework.WaitForAnswers(t.Context(), stepTimeout, "a weighted lane request to reach C's canary", plain, 1, laneSeen); err != nil {
		t.Fatal(err)
	}

	const n = 400
	lane := 0
	for _, r := range framework.Sample(t.Context(), plain, n) {
		if r.Failed() {
			t.Fatalf("weighted step: %s", r)
		}
		// C's canary is reached by lane requests only: B forwards the header A received.
		if laneSeen(r.Body) {
			lane++
		} else if !strings.HasSuffix(r.Body, "spring-cloud-c[base](v1)") {
			t.Fatalf("weighted step: unexpected answer %s", r)
		}
	}
	// 50% of n: a binomial with sd sqrt(n/4) = 10; 4 sd either way fails a correct split about
	// once in 16,000 runs.
	tolerance := 4 * math.Sqrt(float64(n)/4)
	t.Logf("weighted step: %d of %d requests without a header entered the lane (want %d ± %.0f)", lane, n, n/2, tolerance)
	if math.Abs(float64(lane)-float64(n)/2) > tolerance {
		t.Errorf("weighted step: %d of %d requests entered the lane, want %d ± %.0f", lane, n, n/2, tolerance)
	}
	approve(t, ns, a, c)
	waitCompleted(t, ns, a, c)
	expectAnswers(t, "after approval", plain, allBaseV2)
	load.CheckNoFailures(t, 100)
}
