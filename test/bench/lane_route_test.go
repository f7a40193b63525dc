//go:build e2e

package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// The scale: 200 transitions each way over a lane of 500 member Services.
// LANES_BENCH_MEMBERS and LANES_BENCH_TRANSITIONS override them for a quick run.
const (
	defaultMembers     = 500
	defaultTransitions = 200
	// buildTimeout bounds building the lane until every member has its route object.
	buildTimeout = 20 * time.Minute
	// eventTimeout bounds the wait for one watch event; idleTimeout the wait for the controller
	// to go idle.
	eventTimeout = 2 * time.Minute
	idleTimeout  = 2 * time.Minute
)

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// BenchmarkLaneRoute measures how long lanes-manager takes to give a member its lane route when
// the member's canary pod turns Ready, and to take it away when the pod loses readiness, on a lane
// of 500 member Services (issue 7, item 6). Sub-benchmarks: istio (the member's VirtualService
// gains or loses its lane-<tag> http route) and gateway-api (the member's HTTPRoute gains or loses
// the rule to <service>-<tag>).
//
// Real: the API server (Istio's, Gateway API's and Kruise Rollouts' CRDs judge every object), the
// lanes-manager binary with --mesh-routes (its webhook admits every pod), the watches the figures
// are read from, and lanes-manager's metrics endpoint. Set by hand, because Kruise's controller is
// not run (taking 500 Rollouts to a canary through it would take longer than the benchmark): each
// member's Rollout status (phase Progressing, as Kruise writes when a canary starts), and its pods,
// created directly (not by its Deployment, which has no replicas) with the label lanes-manager's
// webhook stamps on base and lane pods for the mesh (istio.service.tag or kruise-lanes.io/lane:
// base | gray), bound to no node, with their Ready condition written through pods/status as a
// kubelet does.
//
// Each transition writes the Ready condition of one member's lane pod, starting from a route
// controller with nothing queued or running; the members flipped are spread evenly over the 500,
// each flipped to Ready and back. Per direction the benchmark reports p50 and p99 (nearest rank)
// of the time from issuing the status write to the arrival of the watch event of the member's
// route object with (without) its lane route. The baseline is the API server's own write-to-watch
// latency for the same writes: from the same moment to the pod's watch event carrying the written
// resourceVersion. Times start when the write is issued, not when it returns, because the API
// server sends the watch event before the write's response arrives about half of the time (a
// p50 of -0.1 ms measured from the return), which leaves no baseline to divide by. Ratios are
// route percentile over baseline percentile. reconcile-ms is the mean of lanes-manager's
// controller_runtime_reconcile_time_seconds for its route controller over the transitions, and
// reconciles/transition and route-writes/transition count how much work one transition caused.
//
// Run it with `make bench-routes` (-benchtime 1x: one iteration is all the transitions).
func BenchmarkLaneRoute(b *testing.B) {
	b.Run("istio", func(b *testing.B) { benchmarkLaneRoute(b, istioRoutes()) })
	b.Run("gateway-api", func(b *testing.B) { benchmarkLaneRoute(b, gatewayRoutes()) })
}

func benchmarkLaneRoute(b *testing.B, mesh meshRoutes) {
	members, err := envInt("LANES_BENCH_MEMBERS", defaultMembers)
	if err != nil {
		b.Fatal(err)
	}
	transitions, err := envInt("LANES_BENCH_TRANSITIONS", defaultTransitions)
	if err != nil {
		b.Fatal(err)
	}
	transitions = min(transitions, members)
	ctx := b.Context()
	c := cluster.Client
	dc, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		b.Fatalf("dynamic client: %v", err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	// The previous sub-benchmark's namespace is deleted in the background; let that finish first.
	if err := waitNoTerminatingNamespace(ctx, c); err != nil {
		b.Fatal(err)
	}
	manager := cluster.StartLanesManager(b, "--mesh-routes=true", "--providers=")
	ns := cluster.Namespace(b)

	started := time.Now()
	lane, err := buildLane(ctx, c, ns, mesh, members)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d members created in %s", members, time.Since(started).Round(time.Millisecond))
	if err := waitRouteObjects(ctx, dc, mesh, ns, members); err != nil {
		b.Fatal(err)
	}
	controller, err := routeController(ctx, hc, manager.MetricsPort, mesh)
	if err != nil {
		b.Fatal(err)
	}
	if err := waitIdle(ctx, hc, manager.MetricsPort, controller, buildTimeout); err != nil {
		b.Fatal(err)
	}
	b.Logf("every member has its route object without a lane route %s after the build started", time.Since(started).Round(time.Millisecond))

	routes, err := startWatchLog(ctx, dc, mesh.routes, ns, mesh.service)
	if err != nil {
		b.Fatal(err)
	}
	pods, err := startWatchLog(ctx, dc, podsResource, ns, (*unstructured.Unstructured).GetName)
	if err != nil {
		b.Fatal(err)
	}
	before, err := scrapeController(ctx, hc, manager.MetricsPort, controller)
	if err != nil {
		b.Fatal(err)
	}
	routeEvents := routes.count()

	var up, down, baseline []time.Duration
	b.ResetTimer()
	for range b.N {
		for i := range transitions {
			pod := lane.lanePods[i*members/transitions]
			for _, ready := range []bool{true, false} {
				s, err := flipReadiness(ctx, c, mesh, routes, pods, pod, ready)
				if err != nil {
					b.Fatal(err)
				}
				if ready {
					up = append(up, s.route)
				} else {
					down = append(down, s.route)
				}
				baseline = append(baseline, s.watch)
				if err := waitIdle(ctx, hc, manager.MetricsPort, controller, idleTimeout); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.StopTimer()
	after, err := scrapeController(ctx, hc, manager.MetricsPort, controller)
	if err != nil {
		b.Fatal(err)
	}
	// Every lane pod ends as it started, not Ready: no member may keep a lane route.
	if err := checkNoLaneRoute(ctx, dc, mesh, ns, members); err != nil {
		b.Fatal(err)
	}

	flips := float64(len(up) + len(down))
	report := func(name string, d []time.Duration) {
		b.ReportMetric(ms(percentile(d, 50)), name+"-p50-ms")
		b.ReportMetric(ms(percentile(d, 99)), name+"-p99-ms")
	}
	report("ready-route", up)
	report("unready-route", down)
	report("watch", baseline)
	for name, d := range map[string][]time.Duration{"ready-route": up, "unready-route": down} {
		b.ReportMetric(float64(percentile(d, 50))/float64(percentile(baseline, 50)), name+"-p50-x")
		b.ReportMetric(float64(percentile(d, 99))/float64(percentile(baseline, 99)), name+"-p99-x")
	}
	reconciles := after.reconciles - before.reconciles
	if reconciles > 0 {
		b.ReportMetric((after.seconds-before.seconds)/float64(reconciles)*1000, "reconcile-ms")
	}
	b.ReportMetric(float64(reconciles)/flips, "reconciles/transition")
	b.ReportMetric(float64(routes.count()-routeEvents)/flips, "route-writes/transition")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s, %d members, %d transitions each way: Ready→route p50 %s p99 %s; not Ready→no route p50 %s p99 %s; pod write→watch p50 %s p99 %s; %d reconciles of %s, mean %.1f ms",
		mesh.mesh, members, len(up), percentile(up, 50), percentile(up, 99), percentile(down, 50), percentile(down, 99),
		percentile(baseline, 50), percentile(baseline, 99), reconciles, controller, (after.seconds-before.seconds)/float64(max(reconciles, 1))*1000)
}

// sample is one transition: from issuing the status write to the pod's watch event (the
// baseline) and to the route object's watch event.
type sample struct{ watch, route time.Duration }

// flipReadiness writes the lane pod's Ready condition and times the watch events that follow.
func flipReadiness(ctx context.Context, c client.Client, mesh meshRoutes, routes, pods *watchLog, pod *corev1.Pod, ready bool) (sample, error) {
	service := pod.Labels["app"]
	routeFrom, podFrom := routes.mark(service), pods.mark(pod.Name)
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	issued := time.Now()
	if err := writeReady(ctx, c, pod, status); err != nil {
		return sample{}, err
	}
	rv := pod.ResourceVersion
	podAt, err := pods.await(ctx, pod.Name, podFrom, eventTimeout, func(s seen) bool { return s.obj.GetResourceVersion() == rv })
	if err != nil {
		return sample{}, fmt.Errorf("pod %s Ready=%s: %w", pod.Name, status, err)
	}
	routeAt, err := routes.await(ctx, service, routeFrom, eventTimeout, func(s seen) bool {
		if ready {
			return !s.deleted && mesh.hasLaneRoute(s.obj)
		}
		return s.deleted || !mesh.hasLaneRoute(s.obj)
	})
	if err != nil {
		return sample{}, fmt.Errorf("lane route of %s after its lane pod turned Ready=%s: %w", service, status, err)
	}
	return sample{watch: podAt.Sub(issued), route: routeAt.Sub(issued)}, nil
}

// routeObjects counts the members whose route object exists, and those among them with a lane
// route.
func routeObjects(ctx context.Context, dc dynamic.Interface, mesh meshRoutes, namespace string) (objects, laneRoutes int, err error) {
	list, err := dc.Resource(mesh.routes).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("list %s in %s: %w", mesh.routes.Resource, namespace, err)
	}
	for i := range list.Items {
		if mesh.service(&list.Items[i]) == "" {
			continue
		}
		objects++
		if mesh.hasLaneRoute(&list.Items[i]) {
			laneRoutes++
		}
	}
	return objects, laneRoutes, nil
}

// waitRouteObjects waits until every member has its route object, none with a lane route (no
// lane pod is Ready yet).
func waitRouteObjects(ctx context.Context, dc dynamic.Interface, mesh meshRoutes, namespace string, members int) error {
	return framework.WaitFor(ctx, buildTimeout, fmt.Sprintf("a %s for each of the %d members", mesh.routes.Resource, members), func(ctx context.Context) (bool, error) {
		objects, laneRoutes, err := routeObjects(ctx, dc, mesh, namespace)
		if err != nil {
			return false, err
		}
		if laneRoutes > 0 {
			return false, framework.Permanent(fmt.Errorf("%d members have a lane route while no lane pod is Ready", laneRoutes))
		}
		if objects != members {
			return false, framework.Pending("%d of %d members have their %s", objects, members, mesh.routes.Resource)
		}
		return true, nil
	})
}

// checkNoLaneRoute fails unless every member has its route object and none has a lane route.
func checkNoLaneRoute(ctx context.Context, dc dynamic.Interface, mesh meshRoutes, namespace string, members int) error {
	objects, laneRoutes, err := routeObjects(ctx, dc, mesh, namespace)
	if err != nil {
		return err
	}
	if objects != members || laneRoutes != 0 {
		return fmt.Errorf("after the transitions %d of %d members have a %s and %d a lane route; want all, and none", objects, members, mesh.routes.Resource, laneRoutes)
	}
	return nil
}

// waitNoTerminatingNamespace waits until no namespace is being deleted.
func waitNoTerminatingNamespace(ctx context.Context, c client.Client) error {
	return framework.WaitFor(ctx, buildTimeout, "no namespace being deleted", func(ctx context.Context) (bool, error) {
		list := &corev1.NamespaceList{}
		if err := c.List(ctx, list); err != nil {
			return false, fmt.Errorf("list namespaces: %w", err)
		}
		for _, ns := range list.Items {
			if !ns.DeletionTimestamp.IsZero() {
				return false, framework.Pending("namespace %s is being deleted", ns.Name)
			}
		}
		return true, nil
	})
}

// routeController finds the name under which lanes-manager's metrics report its route controller.
func routeController(ctx context.Context, hc *http.Client, port int, mesh meshRoutes) (string, error) {
	var errs []error
	for _, name := range mesh.controllers {
		if _, err := scrapeController(ctx, hc, port, name); err != nil {
			errs = append(errs, err)
			continue
		}
		return name, nil
	}
	return "", fmt.Errorf("lanes-manager's metrics report none of the route controllers %v: %v", mesh.controllers, errs)
}

// envInt reads a positive integer from the environment, or returns def when it is unset.
func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}
