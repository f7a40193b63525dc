//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// meshCase is one mesh a lane's hops can be routed by, as the e2e tests read it.
type meshCase struct {
	// mesh and dialect are the lane's kruise-lanes.io/mesh and kruise-lanes.io/dialects.
	mesh, dialect string
	// label is the pod label whose value is the tag on lane pods and base on stable pods.
	label string
	// routes reads the lane's objects: for each member Service with a route object, whether it
	// has a lane route; an error when the objects of a member are incomplete.
	routes func(ctx context.Context, ns string) (map[string]bool, error)
	// routeKind is the route kind (apiVersion, kind) whose removal must come before any pod goes,
	// and hasLane tells whether one such object has the lane route.
	routeKind [2]string
	hasLane   func(*unstructured.Unstructured) bool
}

var meshCases = []meshCase{
	{mesh: "istio", dialect: "istio", label: trafficrouting.LabelIstio, routes: istioRoutes, routeKind: [2]string{"networking.istio.io/v1", "VirtualService"}, hasLane: istioHasLane},
	{mesh: "gateway-api", dialect: "lanes", label: trafficrouting.LabelLanes, routes: gatewayRoutes, routeKind: [2]string{"gateway.networking.k8s.io/v1", "HTTPRoute"}, hasLane: gatewayHasLane},
}

// meshLane creates a lane "lane" of the given mesh entered through an MSE Ingress in front of
// entry, with the tag gray carried in x-mse-tag.
func meshLane(t *testing.T, ns, entry string, m meshCase) {
	t.Helper()
	installMSEProvider(t)
	annotate := func(tr *rolloutsv1alpha1.TrafficRouting) {
		tr.Annotations = map[string]string{trafficrouting.AnnotationMesh: m.mesh, trafficrouting.AnnotationDialects: m.dialect}
	}
	for _, obj := range laneEntry(ns, entry, annotate) {
		if err := cluster.Client.Create(t.Context(), obj); err != nil {
			t.Fatalf("creating %T: %v", obj, err)
		}
	}
}

// laneObjects lists the objects of one kind Kruise Lanes wrote for the lane "lane" in ns.
func laneObjects(ctx context.Context, ns, apiVersion, kind string) ([]unstructured.Unstructured, error) {
	return laneObjectsOf(ctx, ns, "lane", apiVersion, kind)
}

// laneObjectsOf lists the objects of one kind Kruise Lanes wrote for the named lane in ns.
func laneObjectsOf(ctx context.Context, ns, lane, apiVersion, kind string) ([]unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(apiVersion)
	list.SetKind(kind + "List")
	if err := cluster.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{trafficrouting.MeshLaneLabel: lane}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// istioRoutes reads an istio lane: each member Service's VirtualService has a lane route or not,
// and has its DestinationRule.
func istioRoutes(ctx context.Context, ns string) (map[string]bool, error) {
	out := map[string]bool{}
	vss, err := laneObjects(ctx, ns, "networking.istio.io/v1", "VirtualService")
	if err != nil {
		return nil, err
	}
	for i := range vss {
		out[vss[i].GetLabels()[trafficrouting.MeshServiceLabel]] = istioHasLane(&vss[i])
	}
	drs, err := laneObjects(ctx, ns, "networking.istio.io/v1", "DestinationRule")
	if err != nil {
		return nil, err
	}
	return out, sameServices(out, drs, 1, "DestinationRule")
}

// gatewayRoutes reads a gateway-api lane: each member Service's HTTPRoute sends the lane header
// to <svc>-gray or not, and the member has its Services <svc>-base and <svc>-gray.
func gatewayRoutes(ctx context.Context, ns string) (map[string]bool, error) {
	return gatewayLaneRoutes("lane", "gray")(ctx, ns)
}

// gatewayLaneRoutes reads the gateway-api objects of the named lane, whose tag is tag.
func gatewayLaneRoutes(lane, tag string) func(ctx context.Context, ns string) (map[string]bool, error) {
	return func(ctx context.Context, ns string) (map[string]bool, error) {
		out := map[string]bool{}
		routes, err := laneObjectsOf(ctx, ns, lane, "gateway.networking.k8s.io/v1", "HTTPRoute")
		if err != nil {
			return nil, err
		}
		for i := range routes {
			out[routes[i].GetLabels()[trafficrouting.MeshServiceLabel]] = gatewayHasLaneTag(&routes[i], tag)
		}
		services, err := laneObjectsOf(ctx, ns, lane, "v1", "Service")
		if err != nil {
			return nil, err
		}
		return out, sameServices(out, services, 2, "Service")
	}
}

// stayPut checks that the lane's route objects are not rewritten while nothing changes: what the
// API server adds to them (defaults) must not make lanes-manager write them again and again.
func stayPut(t *testing.T, ns string, m meshCase) {
	t.Helper()
	versions := func() map[string]string {
		objs, err := laneObjects(t.Context(), ns, m.routeKind[0], m.routeKind[1])
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, u := range objs {
			out[u.GetName()] = u.GetResourceVersion()
		}
		return out
	}
	before := versions()
	time.Sleep(3 * time.Second)
	if after := versions(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("%ss rewritten while nothing changed: resource versions %v, then %v", m.routeKind[1], before, after)
	}
}

// istioHasLane reports whether a VirtualService's first route is the lane route, ahead of base.
func istioHasLane(u *unstructured.Unstructured) bool { return istioHasLaneTag(u, "gray") }

// istioHasLaneTag reports whether a VirtualService's first route is the route of the lane tag,
// ahead of base.
func istioHasLaneTag(u *unstructured.Unstructured, tag string) bool {
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	return len(routes) == 2 && routes[0].(map[string]any)["name"] == "lane-"+tag
}

// gatewayHasLane reports whether an HTTPRoute's first rule sends the lane to <svc>-gray, ahead of
// the fallback rule.
func gatewayHasLane(u *unstructured.Unstructured) bool { return gatewayHasLaneTag(u, "gray") }

// gatewayHasLaneTag reports whether an HTTPRoute's first rule sends the lane tag to <svc>-<tag>,
// ahead of the fallback rule.
func gatewayHasLaneTag(u *unstructured.Unstructured, tag string) bool {
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	if len(rules) != 2 {
		return false
	}
	backends, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "backendRefs")
	return len(backends) == 1 && backends[0].(map[string]any)["name"] == u.GetLabels()[trafficrouting.MeshServiceLabel]+"-"+tag
}

// sameServices checks that every routed member Service has exactly n objects of a kind, and that
// no other member has any.
func sameServices(routed map[string]bool, objs []unstructured.Unstructured, n int, kind string) error {
	count := map[string]int{}
	for _, u := range objs {
		count[u.GetLabels()[trafficrouting.MeshServiceLabel]]++
	}
	for svc := range routed {
		if count[svc] != n {
			return fmt.Errorf("service %s has %d %ss, want %d", svc, count[svc], kind, n)
		}
	}
	if len(count) != len(routed) {
		return fmt.Errorf("%ss for services %v, want for %v", kind, count, routed)
	}
	return nil
}

// waitLaneRoutes waits until the lane's route objects are exactly want (Service → has a lane
// route), each with what it routes to.
func waitLaneRoutes(t *testing.T, ns, what string, m meshCase, want map[string]bool) time.Duration {
	t.Helper()
	start := time.Now()
	err := framework.WaitFor(t.Context(), stepTimeout, what, func(ctx context.Context) (bool, error) {
		got, err := m.routes(ctx, ns)
		if err != nil {
			return false, framework.Pending("%v", err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return false, framework.Pending("routes (service: lane route) %v, want %v", got, want)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestMeshThreeHopLane: a lane A → B → C on Istio, and on Gateway API (GAMMA), where only A and C
// are released. While their canaries are Ready, A and C have a lane route to their canary and B has
// none (its hop serves the lane from base); when C's canary loses readiness its lane route goes
// while A's stays; on approval each member's routes go before Kruise touches any of its pods, and
// after completion no lane object remains. The objects are judged by Istio's and Gateway API's CRD
// schemas on the real API server.
func TestMeshThreeHopLane(t *testing.T) {
	for _, m := range meshCases {
		t.Run(m.mesh, func(t *testing.T) { testMeshThreeHopLane(t, m) })
	}
}

func testMeshThreeHopLane(t *testing.T, m meshCase) {
	ctx := t.Context()
	c := cluster.Client
	cluster.StartLanesManager(t, "--mesh-routes=true")
	ns := cluster.Namespace(t)
	const oldImage, newImage = "example.com/app:v1", "example.com/app:v2"
	meshLane(t, ns, "a", m)
	for _, name := range []string{"a", "b", "c"} {
		d := deployment(ns, name, oldImage, 2)
		for _, obj := range []client.Object{service(ns, name), d, laneRollout(d)} {
			if err := c.Create(ctx, obj); err != nil {
				t.Fatalf("creating %T %s: %v", obj, name, err)
			}
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForDeploymentAvailable(ctx, c, client.ObjectKey{Namespace: ns, Name: name}, stepTimeout); err != nil {
			t.Fatal(err)
		}
	}

	released := []string{"a", "c"}
	for _, name := range released {
		setImage(t, client.ObjectKey{Namespace: ns, Name: name}, newImage)
	}
	for _, name := range released {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": name}, stepTimeout, map[string]int{newImage: 1, oldImage: 1}); err != nil {
			t.Fatal(err)
		}
	}
	took := waitLaneRoutes(t, ns, "lane routes for a and c only", m, map[string]bool{"a": true, "c": true})
	t.Logf("lane routes for a and c seen %s after both canaries were Ready", took.Round(time.Millisecond))
	stayPut(t, ns, m)

	// The stable pods of every member carry the base label the base subset or Service selects.
	for _, name := range []string{"a", "b", "c"} {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			want := trafficrouting.BaseTag
			if p.Spec.Containers[0].Image == newImage {
				want = "gray"
			}
			if got := p.Labels[m.label]; got != want {
				t.Errorf("pod %s (%s) has %s=%q, want %q", p.Name, p.Spec.Containers[0].Image, m.label, got, want)
			}
		}
	}

	// C's canary loses readiness: its lane route goes, A's stays.
	canary := readyCanary(t, ns, "c", newImage)
	notReady := canary.DeepCopy()
	for i := range notReady.Status.Conditions {
		if notReady.Status.Conditions[i].Type == corev1.PodReady {
			notReady.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if err := c.Status().Patch(ctx, notReady, client.MergeFrom(canary)); err != nil {
		t.Fatal(err)
	}
	took = waitLaneRoutes(t, ns, "c's lane route to go with its Ready canary", m, map[string]bool{"a": true, "c": false})
	t.Logf("c's lane route removed %s after its canary turned not Ready", took.Round(time.Millisecond))
	// Give C a Ready canary again (its Deployment replaces the deleted pod).
	if err := c.Delete(ctx, canary); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": "c"}, stepTimeout, map[string]int{newImage: 1, oldImage: 1}); err != nil {
		t.Fatal(err)
	}
	took = waitLaneRoutes(t, ns, "c's lane route back with a Ready canary", m, map[string]bool{"a": true, "c": true})
	t.Logf("c's lane route back %s after its new canary was Ready", took.Round(time.Millisecond))

	order := watchRouteOrder(t, ns, m)
	for _, name := range released {
		key := client.ObjectKey{Namespace: ns, Name: "rollout-" + name}
		if err := framework.ApproveRollout(ctx, c, key); err != nil {
			t.Fatal(err)
		}
		if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
			t.Fatal(err)
		}
	}
	took = waitLaneRoutes(t, ns, "no lane object after the release", m, map[string]bool{})
	t.Logf("every lane object gone %s after both releases completed", took.Round(time.Millisecond))
	order.check(t, released)

	events := &corev1.EventList{}
	if err := c.List(ctx, events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.HasPrefix(e.Reason, "LaneRoute") && e.Type == corev1.EventTypeWarning {
			t.Errorf("unexpected warning %s: %s", e.Reason, e.Message)
		}
	}
}

// readyCanary returns the Ready pod of app=name running image.
func readyCanary(t *testing.T, ns, name, image string) *corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := cluster.Client.List(t.Context(), pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.Containers[0].Image != image || !p.DeletionTimestamp.IsZero() {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return p
			}
		}
	}
	t.Fatalf("no Ready pod of %s runs %s", name, image)
	return nil
}
