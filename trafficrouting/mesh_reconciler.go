package trafficrouting

import (
	"context"
	"slices"
	"strings"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// MeshRouteReconciler writes the east-west routes of istio and gateway-api lanes: for every
// member Service of a releasing member, the objects IstioObjects or GatewayObjects renders, owned
// by the TrafficRouting. It is level-based: each reconcile of a lane computes every object from
// the members, Services and pods, writes what differs and deletes what it wrote that is no longer
// wanted, so a hop's lane route goes as soon as its last Ready lane pod does, and a lane with no
// releasing member (or that changed mesh) has no objects left. A member stops releasing as soon as
// Kruise starts finalising or cancelling it, so its routes go before Kruise promotes or rolls back
// its pods. An object for a member's host that Kruise Lanes did not write is never touched: the
// hop is skipped and a Warning Event on the TrafficRouting says why.
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

// Reconcile brings one lane's mesh objects to what its members need now.
func (r *MeshRouteReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	tr := &rolloutsv1alpha1.TrafficRouting{}
	if err := r.Client.Get(ctx, req.NamespacedName, tr); err != nil {
		// A deleted lane's objects go with it (owner references).
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	existing, err := r.ownedObjects(ctx, tr)
	if err != nil {
		return reconcile.Result{}, err
	}
	var desired []*unstructured.Unstructured
	mesh, err := MeshOf(tr)
	if err != nil {
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured", "mesh routes left as they are: %v", err)
		return reconcile.Result{}, nil
	}
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
		hops, err := r.hops(ctx, tr, lane, flavor)
		if err != nil {
			return reconcile.Result{}, err
		}
		for _, hop := range hops {
			objs, err := flavor.render(lane, LaneOwner(tr), hop)
			if err != nil {
				r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteInvalid", "no lane route for %v", err)
				continue
			}
			desired = append(desired, objs...)
		}
	}

	plan, err := planMesh(existing, desired, r.ownedKinds())
	if err != nil {
		return reconcile.Result{}, err
	}
	requeue, err := r.apply(ctx, tr, plan)
	if err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// ownedKinds are the kinds of every installed mesh, in deletion order: routes first.
func (r *MeshRouteReconciler) ownedKinds() []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, m := range allMeshes {
		if f, ok := flavorOf(m); ok && slices.Contains(r.Meshes, m) {
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

// SetupWithManager registers the reconciler. It finds which meshes' CRDs the API server serves
// (unless Meshes is set) and watches their kinds. Lanes are reconciled when they change, when
// their mesh objects change, when a member Rollout changes, when a Service changes, and when a pod
// carrying a mesh's lane label changes (readiness, labels, deletion).
func (r *MeshRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if len(r.Meshes) == 0 {
		for _, m := range allMeshes {
			f, ok := flavorOf(m)
			if ok && servesAll(mgr.GetRESTMapper(), f.kinds) {
				r.Meshes = append(r.Meshes, m)
			}
		}
	}
	mgr.GetLogger().WithName("mesh-routes").Info("meshes served by the API server", "meshes", r.Meshes)
	var labelKeys []string
	for _, m := range allMeshes {
		if f, ok := flavorOf(m); ok {
			labelKeys = append(labelKeys, f.label)
		}
	}
	hasLaneLabel := func(o client.Object) bool {
		for _, k := range labelKeys {
			if _, ok := o.GetLabels()[k]; ok {
				return true
			}
		}
		return false
	}
	// A pod matters while it carries a mesh's lane label, and when it loses it.
	lanePods := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return hasLaneLabel(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return hasLaneLabel(e.ObjectOld) || hasLaneLabel(e.ObjectNew) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return hasLaneLabel(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return hasLaneLabel(e.Object) },
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("mesh-routes").
		For(&rolloutsv1alpha1.TrafficRouting{})
	for _, gvk := range r.ownedKinds() {
		if gvk == ServiceGVK {
			continue // every Service is watched below
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		b = b.Owns(u)
	}
	return b.
		Watches(&rolloutsv1beta1.Rollout{}, handler.EnqueueRequestsFromMapFunc(laneOfRollout)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.lanesInNamespace)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.lanesInNamespace), builder.WithPredicates(lanePods)).
		Complete(r)
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

func laneOfRollout(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetAnnotations()[TrafficRoutingAnnotation]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

func (r *MeshRouteReconciler) lanesInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &rolloutsv1alpha1.TrafficRoutingList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "list lanes", "namespace", obj.GetNamespace())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if m, err := MeshOf(&list.Items[i]); err == nil && m != MeshNone {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
