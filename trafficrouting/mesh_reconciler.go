package trafficrouting

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// MeshRouteReconciler writes the east-west routes of istio and gateway-api lanes: for every
// member Service of a releasing member (a hop), the objects IstioObjects or GatewayObjects
// renders, owned by the TrafficRouting. It is level-based and reconciles one hop at a time: each
// reconcile of a hop computes its objects from scratch from the hop's Service, the members whose
// pods it selects, the objects in its way and its pods, all read through cache indexes, writes
// what differs and deletes what it wrote for the hop that is no longer wanted. So a transition
// costs what it touches, not the lane's size; a hop's lane route goes as soon as its last Ready
// lane pod does, and a lane with no releasing member (or that changed mesh) has no objects left.
// A member stops releasing as soon as Kruise starts finalising or cancelling it, so its routes go
// before Kruise promotes or rolls back its pods. An object for a member's host that Kruise Lanes
// did not write is never touched: the hop is skipped and a Warning Event on the TrafficRouting
// says why.
type MeshRouteReconciler struct {
	Client   client.Client
	Defaults Defaults
	Recorder record.EventRecorder
	// CloneSets is true where apps.kruise.io CloneSets are installed.
	CloneSets bool
	// Meshes are the meshes whose CRDs are installed; SetupWithManager fills it from the API
	// server's discovery when empty. A lane of another mesh gets a Warning Event and no routes.
	Meshes []Mesh
	// RouteDrain is how long what a route sends to (a DestinationRule, a lane or base Service)
	// outlives the route once both are no longer wanted; zero means DefaultRouteDrain.
	RouteDrain time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PodNamespaces are the namespaces whose lane pods the reconciler caches (mesh_pods.go); empty
	// means every namespace.
	PodNamespaces []string

	// lanePods reads the pods that carry a mesh's lane label, by that label (setUpLanePods).
	lanePods map[string]client.Reader

	// written is what the reconciler last sent for each mesh object, so that the event of its own
	// write causes no second reconcile.
	written writtenObjects
}

// DefaultRouteDrain is the default MeshRouteReconciler.RouteDrain. A mesh's data plane learns a
// route and its destinations in separate updates (xDS RDS and CDS), in either order: deleting a
// DestinationRule in the same moment as the VirtualService that names its subsets lets a client
// route to a subset it has just been told is gone ("cluster not found"). So the destinations go
// a few seconds after the route, when every client has long dropped it.
const DefaultRouteDrain = 5 * time.Second

// MeshUnroutedAnnotation marks a destination object (DestinationRule, lane or base Service)
// whose route is gone, with the time it was first seen so (RFC 3339): it is deleted once
// RouteDrain has passed since. The mark lives on the object, so a restart or a failover keeps the
// drain; an object wanted again loses it.
const MeshUnroutedAnnotation = AnnotationPrefix + "unrouted-since"

func (r *MeshRouteReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *MeshRouteReconciler) routeDrain() time.Duration {
	if r.RouteDrain > 0 {
		return r.RouteDrain
	}
	return DefaultRouteDrain
}

// Reconcile brings one hop's mesh objects (or, for a request without a Service, every hop's of
// the lane) to what the hop needs now.
func (r *MeshRouteReconciler) Reconcile(ctx context.Context, req meshRequest) (reconcile.Result, error) {
	tr := &rolloutsv1alpha1.TrafficRouting{}
	if err := r.Client.Get(ctx, req.Lane, tr); err != nil {
		// A deleted lane's objects go with it (owner references).
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	mesh, err := MeshOf(tr)
	if err != nil {
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured", "mesh routes left as they are: %v", err)
		return reconcile.Result{}, nil
	}
	var routing *laneRouting // nil: the lane routes nothing, its objects go
	if flavor, ok := flavorOf(mesh); ok && tr.DeletionTimestamp.IsZero() {
		if !slices.Contains(r.Meshes, mesh) {
			r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured",
				"the lane asks for %s routes but the API server does not serve %s; install them and restart lanes-manager", mesh, kindNames(flavor.kinds))
			return reconcile.Result{}, nil
		}
		lane, err := Resolve(tr, r.Defaults)
		if err != nil {
			// A broken lane keeps the routes it has; the webhook's Events say what to change.
			r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured", "%s routes left as they are: %v", mesh, err)
			return reconcile.Result{}, nil
		}
		routing = &laneRouting{lane: lane, flavor: flavor}
	}
	services := []string{req.Service}
	if req.Service == "" {
		if services, err = r.laneServices(ctx, tr, routing != nil); err != nil {
			return reconcile.Result{}, err
		}
	}
	var requeue time.Duration
	for _, service := range services {
		wait, err := r.reconcileHop(ctx, tr, routing, service)
		if err != nil {
			return reconcile.Result{}, err
		}
		if wait > 0 && (requeue == 0 || wait < requeue) {
			requeue = wait
		}
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// reconcileHop computes the objects of one hop from scratch, writes what differs and deletes
// what the hop has and no longer wants; it returns how long until a drained object is due.
func (r *MeshRouteReconciler) reconcileHop(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, routing *laneRouting, service string) (time.Duration, error) {
	existing, err := r.hopObjects(ctx, tr, service)
	if err != nil {
		return 0, err
	}
	var desired []*unstructured.Unstructured
	if routing != nil {
		hop, ok, err := r.hop(ctx, tr, *routing, service)
		if err != nil {
			return 0, err
		}
		if ok {
			objs, err := routing.flavor.render(routing.lane, LaneOwner(tr), hop)
			if err != nil {
				r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteInvalid", "no lane route for %v", err)
			} else {
				desired = objs
			}
		}
	}
	plan, err := planMesh(existing, desired, r.ownedKinds())
	if err != nil {
		return 0, err
	}
	return r.apply(ctx, tr, plan)
}

// ownedKinds are the kinds of every installed mesh, in deletion order: routes first.
func (r *MeshRouteReconciler) ownedKinds() []schema.GroupVersionKind { return meshKinds(r.Meshes) }

// meshKinds are the kinds of the meshes, in deletion order: routes first.
func meshKinds(meshes []Mesh) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, m := range allMeshes {
		if f, ok := flavorOf(m); ok && slices.Contains(meshes, m) {
			out = append(out, f.kinds...)
		}
	}
	return out
}

func kindNames(gvks []schema.GroupVersionKind) string {
	names := make([]string, 0, len(gvks))
	for _, gvk := range gvks {
		if gvk.Group != "" {
			names = append(names, gvk.Kind+"s ("+gvk.Group+")")
		}
	}
	return strings.Join(names, " and ")
}

// SetupWithManager registers the reconciler and its cache indexes (meshIndexes; the manager
// registers RolloutWorkloadIndex), and creates its lane pod caches (setUpLanePods), which hold
// the lane pods and their index. It finds which meshes' CRDs the API server serves (unless Meshes
// is set) and watches their kinds. Each event is mapped to the hops it concerns (mesh_events.go):
// a lane pod's to the hops of the Services that select it, a Service's or mesh object's to its
// own hop and those it stands in the way of, a member Rollout's status to its hops; a lane's
// change, or a Rollout joining, leaving or changing workload, reconciles every hop of the lane.
func (r *MeshRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if len(r.Meshes) == 0 {
		for _, m := range allMeshes {
			f, ok := flavorOf(m)
			if ok && servesAll(mgr.GetRESTMapper(), f.kinds) {
				r.Meshes = append(r.Meshes, m)
			}
		}
	}
	log := mgr.GetLogger().WithName("mesh-routes")
	log.Info("meshes served by the API server", "meshes", r.Meshes)
	for _, idx := range meshIndexes(r.Meshes, r.CloneSets) {
		if _, pod := idx.obj.(*corev1.Pod); pod {
			continue // registered on the lane pod caches
		}
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), idx.obj, idx.field, idx.extract); err != nil {
			return fmt.Errorf("index %T by %s: %w", idx.obj, idx.field, err)
		}
	}
	b := builder.TypedControllerManagedBy[meshRequest](mgr).
		Named("mesh-routes").
		WithLogConstructor(func(req *meshRequest) logr.Logger {
			if req == nil {
				return log
			}
			return log.WithValues("lane", req.Lane, "service", req.Service)
		}).
		Watches(&rolloutsv1alpha1.TrafficRouting{}, handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []meshRequest {
			return []meshRequest{laneRequest(o.GetNamespace(), o.GetName())}
		}), builder.WithPredicates(laneChanges())).
		Watches(&rolloutsv1beta1.Rollout{}, r.rolloutEvents()).
		Watches(&corev1.Service{}, r.meshObjectEvents())
	podSources, err := r.setUpLanePods(mgr)
	if err != nil {
		return err
	}
	for _, src := range podSources {
		b = b.WatchesRawSource(src)
	}
	for _, gvk := range r.ownedKinds() {
		if gvk == ServiceGVK {
			continue // Services are watched above
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		b = b.Watches(u, r.meshObjectEvents())
	}
	return b.Complete(r)
}

// servesAll reports whether the API server serves every kind.
func servesAll(mapper meta.RESTMapper, gvks []schema.GroupVersionKind) bool {
	for _, gvk := range gvks {
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return false
		}
	}
	return true
}
