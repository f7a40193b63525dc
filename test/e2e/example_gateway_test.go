//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// TestExampleGatewayAPI applies examples/gateway-api with lanes-manager's mesh routes on and our
// httproute provider in Kruise's ConfigMap, releases spring-cloud-a and spring-cloud-c (not b),
// and checks what the example's README promises: the entry HTTPRoute gets the lane rule (User-Agent
// xiaoming → spring-cloud-a with x-mse-tag: gray set), a and c get their lane Services and
// GAMMA routes, b none; after approval no lane object is left and the entry route is as before.
func TestExampleGatewayAPI(t *testing.T) {
	ctx := t.Context()
	c := cluster.Client
	cluster.StartLanesManager(t, "--mesh-routes=true")
	provider := luascripts.CustomNetworkProviders()[0]
	script, err := luascripts.CustomNetwork(provider.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.SetKruiseConfiguration(ctx, c, provider.Key(), string(script)); err != nil {
		t.Fatal(err)
	}
	ns := cluster.Namespace(t)
	applyExample(t, ns, "gateway-api")
	members := []string{"rollout-a", "rollout-b", "rollout-c"}
	waitExampleHealthy(t, ns, "gray", members...)
	original := entryRouteSpec(t, ns)

	released := []string{"spring-cloud-a", "spring-cloud-c"}
	for _, name := range released {
		setImage(t, client.ObjectKey{Namespace: ns, Name: name}, "example.com/"+name+":2.0.0")
	}
	for _, name := range []string{"rollout-a", "rollout-c"} {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: name}, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
			t.Fatal(err)
		}
	}
	routes := meshCase{mesh: "gateway-api", routes: gatewayLaneRoutes("gray", "gray")}
	took := waitLaneRoutes(t, ns, "lane routes for spring-cloud-a and spring-cloud-c only", routes,
		map[string]bool{"spring-cloud-a": true, "spring-cloud-c": true})
	t.Logf("lane routes for a and c seen %s after both Rollouts paused", took.Round(time.Millisecond))

	// The entry: a rule for the lane's requests, to spring-cloud-a with the lane header set.
	err = framework.WaitFor(ctx, stepTimeout, "the entry HTTPRoute's lane rule", func(ctx context.Context) (bool, error) {
		return entryHasLaneRule(entryRoute(ctx, t, ns))
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"rollout-a", "rollout-c"} {
		key := client.ObjectKey{Namespace: ns, Name: name}
		if err := framework.ApproveRollout(ctx, c, key); err != nil {
			t.Fatal(err)
		}
		if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
			t.Fatal(err)
		}
	}
	waitLaneRoutes(t, ns, "no lane object after the release", routes, map[string]bool{})
	err = framework.WaitFor(ctx, stepTimeout, "the entry HTTPRoute restored", func(ctx context.Context) (bool, error) {
		got, _, _ := unstructured.NestedMap(entryRoute(ctx, t, ns).Object, "spec")
		if !reflect.DeepEqual(got, original) {
			return false, framework.Pending("entry spec %v, want %v", got, original)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func entryRoute(ctx context.Context, t *testing.T, ns string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("gateway.networking.k8s.io/v1")
	u.SetKind("HTTPRoute")
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-entry"}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func entryRouteSpec(t *testing.T, ns string) map[string]any {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(entryRoute(t.Context(), t, ns).Object, "spec")
	return spec
}

// entryHasLaneRule reports whether the entry route has a rule that matches User-Agent xiaoming,
// sets x-mse-tag: gray and sends to spring-cloud-a, beside the route's own rule.
func entryHasLaneRule(u *unstructured.Unstructured) (bool, error) {
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	for _, r := range rules {
		rule := r.(map[string]any)
		matches, _, _ := unstructured.NestedSlice(rule, "matches")
		filters, _, _ := unstructured.NestedSlice(rule, "filters")
		backends, _, _ := unstructured.NestedSlice(rule, "backendRefs")
		if len(matches) != 1 || len(filters) != 1 || len(backends) != 1 {
			continue
		}
		headers, _, _ := unstructured.NestedSlice(matches[0].(map[string]any), "headers")
		set, _, _ := unstructured.NestedSlice(filters[0].(map[string]any), "requestHeaderModifier", "set")
		if fmt.Sprint(headers) == "[map[name:User-Agent type:Exact value:xiaoming]]" &&
			fmt.Sprint(set) == "[map[name:x-mse-tag value:gray]]" &&
			backends[0].(map[string]any)["name"] == "spring-cloud-a" {
			if len(rules) != 2 {
				return false, framework.Pending("entry has the lane rule and %d rules, want 2", len(rules))
			}
			return true, nil
		}
	}
	return false, framework.Pending("entry rules %v have no lane rule", rules)
}
