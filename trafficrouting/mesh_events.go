package trafficrouting

// Events: which hops an event concerns. The MeshRouteReconciler reconciles one hop (a lane and one
// of its member Services) per request, so an event is mapped to the hops it can change, and an
// event of an object the reconciler has just written, holding what it wrote, to none.

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// meshRequest is what the MeshRouteReconciler reconciles: one hop of a lane, the lane's mesh
// objects for one member Service, or, with Service empty, every hop of the lane.
type meshRequest struct {
	Lane    types.NamespacedName
	Service string
}

// laneRequest is the request for every hop of a lane.
func laneRequest(namespace, lane string) meshRequest {
	return meshRequest{Lane: types.NamespacedName{Namespace: namespace, Name: lane}}
}

// meshLane is a lane of a namespace whose mesh writes routes, with its tag ("" when the lane
// does not resolve).
type meshLane struct {
	name, tag string
}

// meshLanes are the lanes of a namespace whose mesh writes routes.
func (r *MeshRouteReconciler) meshLanes(ctx context.Context, namespace string) []meshLane {
	list := &rolloutsv1alpha1.TrafficRoutingList{}
	if err := r.Client.List(ctx, list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "list lanes", "namespace", namespace)
		return nil
	}
	var out []meshLane
	for i := range list.Items {
		tr := &list.Items[i]
		if m, err := MeshOf(tr); err != nil || m == MeshNone {
			continue
		}
		lane, _ := Resolve(tr, r.Defaults)
		out = append(out, meshLane{name: tr.Name, tag: lane.Tag})
	}
	return out
}

// hopsOf maps an object to the hops of every mesh lane of its namespace among the Services that
// select its labels: a lane pod to the hops it can make Ready.
func (r *MeshRouteReconciler) hopsOf(ctx context.Context, obj client.Object) []meshRequest {
	services, err := r.servicesSelecting(ctx, obj.GetNamespace(), obj.GetLabels())
	if err != nil {
		logf.FromContext(ctx).Error(err, "find the services of a pod", "pod", client.ObjectKeyFromObject(obj))
		return nil
	}
	if len(services) == 0 {
		return nil
	}
	var out []meshRequest
	for _, l := range r.meshLanes(ctx, obj.GetNamespace()) {
		for _, svc := range services {
			out = append(out, meshRequest{Lane: types.NamespacedName{Namespace: obj.GetNamespace(), Name: l.name}, Service: svc})
		}
	}
	return out
}

// lanePodChanges lets through the events of pods that carry a mesh's lane label (or lose it)
// and, of their updates, those that change what a hop reads of a pod: labels, readiness,
// deletion.
func lanePodChanges() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return hasMeshLabel(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if !hasMeshLabel(e.ObjectOld) && !hasMeshLabel(e.ObjectNew) {
				return false
			}
			oldPod, okOld := e.ObjectOld.(*corev1.Pod)
			newPod, okNew := e.ObjectNew.(*corev1.Pod)
			if !okOld || !okNew {
				return true
			}
			return !maps.Equal(oldPod.Labels, newPod.Labels) || podReady(oldPod) != podReady(newPod) ||
				oldPod.DeletionTimestamp.IsZero() != newPod.DeletionTimestamp.IsZero()
		},
		DeleteFunc:  func(e event.DeleteEvent) bool { return hasMeshLabel(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return hasMeshLabel(e.Object) },
	}
}

// laneChanges lets through the updates of a TrafficRouting that change its routes: its spec,
// annotations or deletion (not its status, which Kruise writes).
func laneChanges() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			!maps.Equal(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations()) ||
			(e.ObjectOld.GetDeletionTimestamp() == nil) != (e.ObjectNew.GetDeletionTimestamp() == nil)
	}}
}

// rolloutEvents maps a Rollout's events to hops: a Rollout that joins or leaves a lane, or
// releases another workload, to every hop of the lanes before and after; any other change (its
// status: whether it is Routable) to the hops of its lane among the Services that select its
// workload's pod template.
func (r *MeshRouteReconciler) rolloutEvents() handler.TypedEventHandler[client.Object, meshRequest] {
	lanes := func(q workqueue.TypedRateLimitingInterface[meshRequest], objs ...client.Object) {
		for _, o := range objs {
			if name := o.GetAnnotations()[TrafficRoutingAnnotation]; name != "" {
				q.Add(laneRequest(o.GetNamespace(), name))
			}
		}
	}
	return handler.TypedFuncs[client.Object, meshRequest]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[meshRequest]) {
			lanes(q, e.Object)
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[meshRequest]) {
			lanes(q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[meshRequest]) {
			oldRo, okOld := e.ObjectOld.(*rolloutsv1beta1.Rollout)
			ro, okNew := e.ObjectNew.(*rolloutsv1beta1.Rollout)
			if !okOld || !okNew || oldRo.Annotations[TrafficRoutingAnnotation] != ro.Annotations[TrafficRoutingAnnotation] || oldRo.Spec.WorkloadRef != ro.Spec.WorkloadRef {
				lanes(q, e.ObjectOld, e.ObjectNew)
				return
			}
			lane := ro.Annotations[TrafficRoutingAnnotation]
			if lane == "" {
				return
			}
			template, err := r.templateLabels(ctx, ro)
			if err != nil {
				logf.FromContext(ctx).Error(err, "read the workload of a rollout", "rollout", client.ObjectKeyFromObject(ro))
				lanes(q, ro)
				return
			}
			services, err := r.servicesSelecting(ctx, ro.Namespace, template)
			if err != nil {
				logf.FromContext(ctx).Error(err, "find the services of a rollout", "rollout", client.ObjectKeyFromObject(ro))
				lanes(q, ro)
				return
			}
			for _, svc := range services {
				q.Add(meshRequest{Lane: types.NamespacedName{Namespace: ro.Namespace, Name: lane}, Service: svc})
			}
		},
	}
}

// meshObjectEvents maps the events of Services and of the mesh kinds to hops. An object Kruise
// Lanes wrote goes to its own hop — unless the event only shows what the reconciler last wrote
// there (written), so that its own writes cost no second reconcile, while a deletion and anyone
// else's edit still do. Any object also goes to the hops of the other lanes of its namespace it
// stands in the way of (routedServices), and a Service it did not write to its own hop in each
// lane; of an update, only when it changes those (labels, what it routes, a Service's selector
// or ports).
func (r *MeshRouteReconciler) meshObjectEvents() handler.TypedEventHandler[client.Object, meshRequest] {
	return handler.TypedFuncs[client.Object, meshRequest]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[meshRequest]) {
			r.enqueueMeshObject(ctx, q, nil, e.Object, false)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[meshRequest]) {
			r.enqueueMeshObject(ctx, q, e.ObjectOld, e.ObjectNew, false)
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[meshRequest]) {
			r.written.forget(e.Object)
			r.enqueueMeshObject(ctx, q, nil, e.Object, true)
		},
	}
}

func (r *MeshRouteReconciler) enqueueMeshObject(ctx context.Context, q workqueue.TypedRateLimitingInterface[meshRequest], old, obj client.Object, deleted bool) {
	if lane, service, ok := hopOfObject(obj); ok && (deleted || !r.written.holds(obj)) {
		q.Add(meshRequest{Lane: types.NamespacedName{Namespace: obj.GetNamespace(), Name: lane}, Service: service})
	}
	if old != nil && !standsOtherwise(old, obj) {
		return
	}
	for _, o := range []client.Object{old, obj} {
		if o == nil {
			continue
		}
		for _, req := range r.othersHops(ctx, o) {
			q.Add(req)
		}
	}
}

// othersHops are the hops of the mesh lanes of its namespace, other than the one that wrote it,
// that an object concerns: those of the Services it routes and, for a Service Kruise Lanes did not
// write, its own.
func (r *MeshRouteReconciler) othersHops(ctx context.Context, o client.Object) []meshRequest {
	owner, _, owned := hopOfObject(o)
	var out []meshRequest
	for _, l := range r.meshLanes(ctx, o.GetNamespace()) {
		if owned && l.name == owner {
			continue
		}
		services := routedServices(o, l.tag)
		if !owned && isServiceObject(o) {
			services = append(services, o.GetName())
		}
		for _, svc := range services {
			out = append(out, meshRequest{Lane: types.NamespacedName{Namespace: o.GetNamespace(), Name: l.name}, Service: svc})
		}
	}
	return out
}

// standsOtherwise reports whether an update changes how an object concerns other lanes' hops.
func standsOtherwise(old, obj client.Object) bool {
	if !maps.Equal(old.GetLabels(), obj.GetLabels()) || !slices.Equal(routedServices(old, ""), routedServices(obj, "")) {
		return true
	}
	oldSvc, okOld := old.(*corev1.Service)
	svc, okNew := obj.(*corev1.Service)
	return okOld && okNew && (!maps.Equal(oldSvc.Spec.Selector, svc.Spec.Selector) || !equality.Semantic.DeepEqual(oldSvc.Spec.Ports, svc.Spec.Ports))
}

// writtenObjects remembers, per mesh object, what the reconciler last sent to the API server for
// it (a create, an update or an unrouted mark), from just before the request is sent until the
// object is deleted. The zero value is ready to use.
type writtenObjects struct {
	mu   sync.Mutex
	sent map[string]*unstructured.Unstructured
}

// writtenKey identifies a mesh object (typed Service or unstructured) by kind, namespace and name.
func writtenKey(o client.Object) string {
	kind := ServiceGVK.Kind
	if u, ok := o.(*unstructured.Unstructured); ok {
		kind = u.GetKind()
	}
	return kind + "/" + o.GetNamespace() + "/" + o.GetName()
}

// record remembers obj as what is about to be sent (before it is: its event may arrive before
// the response does).
func (w *writtenObjects) record(obj *unstructured.Unstructured) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent == nil {
		w.sent = map[string]*unstructured.Unstructured{}
	}
	w.sent[writtenKey(obj)] = obj.DeepCopy()
}

// forget drops what was sent for the object.
func (w *writtenObjects) forget(obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.sent, writtenKey(obj))
}

// holds reports whether the object, as an event shows it, still holds exactly what was last sent
// for it: the same labels and owners, every annotation sent (and no unrouted mark unless one was
// sent), a spec that covers the spec sent (the API server's defaults aside, as in upToDate), and
// no deletion. Such an event is the reconciler's own write coming back: a reconcile would find
// nothing to change.
func (w *writtenObjects) holds(obj client.Object) bool {
	w.mu.Lock()
	sent := w.sent[writtenKey(obj)]
	w.mu.Unlock()
	if sent == nil || obj.GetDeletionTimestamp() != nil {
		return false
	}
	if !maps.Equal(obj.GetLabels(), sent.GetLabels()) || !reflect.DeepEqual(obj.GetOwnerReferences(), sent.GetOwnerReferences()) {
		return false
	}
	annotations := obj.GetAnnotations()
	for k, v := range sent.GetAnnotations() {
		if got, ok := annotations[k]; !ok || got != v {
			return false
		}
	}
	if _, marked := annotations[MeshUnroutedAnnotation]; marked && sent.GetAnnotations()[MeshUnroutedAnnotation] == "" {
		return false
	}
	var spec any
	if u, ok := obj.(*unstructured.Unstructured); ok {
		spec = u.Object["spec"]
	} else {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return false
		}
		spec = m["spec"]
	}
	return covers(spec, sent.Object["spec"])
}
