package trafficrouting

import (
	"context"
	"fmt"
	"reflect"

	"github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// IstioRouteReconciler writes the east-west routes of istio lanes: for every member Service of a
// releasing member, the DestinationRule and VirtualService IstioObjects renders, owned by the
// TrafficRouting. It is level-based: each reconcile of a lane computes every object from the
// members, Services and pods, writes what differs and deletes what it wrote that is no longer
// wanted, so a hop's lane route goes as soon as its last Ready lane pod does, and a lane with no
// releasing member (or that stopped being an istio lane) has no objects left. An object for a
// member's host that Kruise Lanes did not write is never touched: the hop is skipped and a
// Warning Event on the TrafficRouting says why.
type IstioRouteReconciler struct {
	Client   client.Client
	Defaults Defaults
	Recorder record.EventRecorder
	// CloneSets is true where apps.kruise.io CloneSets are installed.
	CloneSets bool
}

// Reconcile brings one lane's Istio objects to what its members need now.
func (r *IstioRouteReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx).WithName("mesh-istio")
	tr := &v1alpha1.TrafficRouting{}
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
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured", "istio routes left as they are: %v", err)
		return reconcile.Result{}, nil
	}
	if mesh == MeshIstio && tr.DeletionTimestamp.IsZero() {
		lane, err := Resolve(tr, r.Defaults)
		if err != nil {
			// A broken lane keeps the routes it has; the webhook's Events say what to change.
			r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured", "istio routes left as they are: %v", err)
			return reconcile.Result{}, nil
		}
		hops, err := r.hops(ctx, tr, lane)
		if err != nil {
			return reconcile.Result{}, err
		}
		for _, hop := range hops {
			desired = append(desired, IstioObjects(lane, LaneOwner(tr), hop)...)
		}
	}

	wanted := map[string]bool{}
	for _, obj := range desired {
		wanted[objectKey(obj)] = true
		if err := r.write(ctx, tr, obj); err != nil {
			return reconcile.Result{}, err
		}
	}
	// VirtualServices go before DestinationRules: a route never names a subset that is gone.
	for _, kind := range []string{VirtualServiceGVK.Kind, DestinationRuleGVK.Kind} {
		for _, obj := range existing {
			if obj.GetKind() != kind || wanted[objectKey(obj)] {
				continue
			}
			if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: ptrUID(obj.GetUID())}); client.IgnoreNotFound(err) != nil {
				return reconcile.Result{}, fmt.Errorf("delete %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
			}
			log.Info("lane route deleted", "lane", req, "kind", kind, "name", obj.GetName())
			r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteDeleted", "deleted %s %s", kind, obj.GetName())
		}
	}
	return reconcile.Result{}, nil
}

func ptrUID(uid types.UID) *types.UID { return &uid }

func objectKey(u *unstructured.Unstructured) string { return u.GetKind() + "/" + u.GetName() }

// hops gathers the member Services of the lane's releasing members and whether each has Ready
// lane and base pods. Services whose host has an Istio object Kruise Lanes did not write for this
// lane are left out, with a Warning Event.
func (r *IstioRouteReconciler) hops(ctx context.Context, tr *v1alpha1.TrafficRouting, lane Lane) ([]Hop, error) {
	rollouts := &v1beta1.RolloutList{}
	if err := r.Client.List(ctx, rollouts, client.InNamespace(tr.Namespace)); err != nil {
		return nil, fmt.Errorf("list rollouts in %s: %w", tr.Namespace, err)
	}
	services := &corev1.ServiceList{}
	if err := r.Client.List(ctx, services, client.InNamespace(tr.Namespace)); err != nil {
		return nil, fmt.Errorf("list services in %s: %w", tr.Namespace, err)
	}
	foreign, err := r.foreignObjects(ctx, tr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var hops []Hop
	for i := range rollouts.Items {
		ro := &rollouts.Items[i]
		if ro.Annotations[TrafficRoutingAnnotation] != tr.Name || !ro.DeletionTimestamp.IsZero() || ro.Status.Phase != v1beta1.RolloutPhaseProgressing {
			continue
		}
		template, err := r.templateLabels(ctx, ro)
		if err != nil {
			return nil, err
		}
		for j := range services.Items {
			svc := &services.Items[j]
			if seen[svc.Name] || !ServiceSelects(svc.Spec.Selector, template) {
				continue
			}
			seen[svc.Name] = true
			if other := conflicting(foreign, svc.Name, tr.Namespace); other != nil {
				r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteConflict",
					"service %s is routed by %s %s, which Kruise Lanes did not write for this lane; its lane route is not written: delete or merge that object", svc.Name, other.GetKind(), other.GetName())
				continue
			}
			hop := Hop{Service: svc.Name}
			if hop.LaneReady, err = r.anyReady(ctx, tr.Namespace, svc.Spec.Selector, LabelIstio, lane.Tag); err != nil {
				return nil, err
			}
			if hop.BaseReady, err = r.anyReady(ctx, tr.Namespace, svc.Spec.Selector, LabelIstio, BaseTag); err != nil {
				return nil, err
			}
			hops = append(hops, hop)
		}
	}
	return hops, nil
}

// conflicting returns an object among others that routes the Service's host.
func conflicting(others []*unstructured.Unstructured, service, namespace string) *unstructured.Unstructured {
	for _, o := range others {
		if o.GetName() == MeshObjectName(service) {
			return o
		}
		for _, h := range IstioObjectHosts(o) {
			if IstioHostOf(h, service, namespace) {
				return o
			}
		}
	}
	return nil
}

// templateLabels are the pod template labels of a Rollout's workload.
func (r *IstioRouteReconciler) templateLabels(ctx context.Context, ro *v1beta1.Rollout) (map[string]string, error) {
	key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Spec.WorkloadRef.Name}
	switch ro.Spec.WorkloadRef.Kind {
	case "Deployment":
		d := &appsv1.Deployment{}
		if err := r.Client.Get(ctx, key, d); err != nil {
			return nil, ignoreNotFound(err, "deployment", key.Namespace, key.Name)
		}
		return d.Spec.Template.Labels, nil
	case "StatefulSet":
		s := &appsv1.StatefulSet{}
		if err := r.Client.Get(ctx, key, s); err != nil {
			return nil, ignoreNotFound(err, "statefulset", key.Namespace, key.Name)
		}
		return s.Spec.Template.Labels, nil
	case "CloneSet":
		if !r.CloneSets {
			return nil, nil
		}
		cs := &unstructured.Unstructured{}
		cs.SetGroupVersionKind(CloneSetGVK)
		if err := r.Client.Get(ctx, key, cs); err != nil {
			return nil, ignoreNotFound(err, "cloneset", key.Namespace, key.Name)
		}
		l, _, _ := unstructured.NestedStringMap(cs.Object, "spec", "template", "metadata", "labels")
		return l, nil
	}
	return nil, nil
}

// anyReady reports whether a Ready, not terminating pod matches the selector plus key=value.
func (r *IstioRouteReconciler) anyReady(ctx context.Context, namespace string, selector map[string]string, key, value string) (bool, error) {
	match := client.MatchingLabels{key: value}
	for k, v := range selector {
		match[k] = v
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(namespace), match); err != nil {
		return false, fmt.Errorf("list pods in %s: %w", namespace, err)
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp.IsZero() && podReady(&pods.Items[i]) {
			return true, nil
		}
	}
	return false, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *IstioRouteReconciler) list(ctx context.Context, namespace string, gvk schema.GroupVersionKind, opts ...client.ListOption) ([]*unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := r.Client.List(ctx, list, append(opts, client.InNamespace(namespace))...); err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, namespace, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

// ownedObjects are the Istio objects Kruise Lanes wrote for this lane.
func (r *IstioRouteReconciler) ownedObjects(ctx context.Context, tr *v1alpha1.TrafficRouting) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range []schema.GroupVersionKind{VirtualServiceGVK, DestinationRuleGVK} {
		objs, err := r.list(ctx, tr.Namespace, gvk, client.MatchingLabels{ManagedByLabel: ManagedByValue, MeshLaneLabel: tr.Name})
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// foreignObjects are the Istio objects in the lane's namespace that Kruise Lanes did not write
// for this lane.
func (r *IstioRouteReconciler) foreignObjects(ctx context.Context, tr *v1alpha1.TrafficRouting) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range []schema.GroupVersionKind{VirtualServiceGVK, DestinationRuleGVK} {
		objs, err := r.list(ctx, tr.Namespace, gvk)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if !IsLaneMeshObject(o, tr.Name) {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// write creates the object, or updates it when its labels, owners or spec differ. It never
// takes over an object it did not write (hops already skips those; this guards the race).
func (r *IstioRouteReconciler) write(ctx context.Context, tr *v1alpha1.TrafficRouting, obj *unstructured.Unstructured) error {
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(obj.GroupVersionKind())
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), current)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteCreated", "created %s %s%s", obj.GetKind(), obj.GetName(), routeSummary(obj))
		return nil
	case err != nil:
		return fmt.Errorf("get %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	if !IsLaneMeshObject(current, tr.Name) {
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteConflict", "%s %s exists and Kruise Lanes did not write it; left as it is", obj.GetKind(), obj.GetName())
		return nil
	}
	if reflect.DeepEqual(current.Object["spec"], obj.Object["spec"]) &&
		reflect.DeepEqual(current.GetLabels(), obj.GetLabels()) &&
		reflect.DeepEqual(current.GetOwnerReferences(), obj.GetOwnerReferences()) {
		return nil
	}
	obj.SetResourceVersion(current.GetResourceVersion())
	if err := r.Client.Update(ctx, obj); err != nil {
		return fmt.Errorf("update %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteUpdated", "updated %s %s%s", obj.GetKind(), obj.GetName(), routeSummary(obj))
	return nil
}

// routeSummary says whether a VirtualService carries a lane route.
func routeSummary(obj *unstructured.Unstructured) string {
	if obj.GetKind() != VirtualServiceGVK.Kind {
		return ""
	}
	routes, _, _ := unstructured.NestedSlice(obj.Object, "spec", "http")
	if len(routes) > 1 {
		return " with the lane route"
	}
	return " without a lane route"
}

// SetupWithManager registers the reconciler. Lanes are reconciled when they change, when their
// Istio objects change, when a member Rollout changes, when a Service changes, and when a pod
// carrying the istio label changes (readiness, labels, deletion).
func (r *IstioRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(VirtualServiceGVK)
	dr := &unstructured.Unstructured{}
	dr.SetGroupVersionKind(DestinationRuleGVK)
	hasIstioLabel := func(o client.Object) bool {
		_, ok := o.GetLabels()[LabelIstio]
		return ok
	}
	// A pod matters while it carries the istio label, and when it loses it.
	istioPods := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return hasIstioLabel(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return hasIstioLabel(e.ObjectOld) || hasIstioLabel(e.ObjectNew) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return hasIstioLabel(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return hasIstioLabel(e.Object) },
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("mesh-istio").
		For(&v1alpha1.TrafficRouting{}).
		Owns(vs).
		Owns(dr).
		Watches(&v1beta1.Rollout{}, handler.EnqueueRequestsFromMapFunc(laneOfRollout)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.lanesInNamespace)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.lanesInNamespace), builder.WithPredicates(istioPods)).
		Complete(r)
}

func laneOfRollout(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetAnnotations()[TrafficRoutingAnnotation]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

func (r *IstioRouteReconciler) lanesInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &v1alpha1.TrafficRoutingList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "list lanes", "namespace", obj.GetNamespace())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if m, err := MeshOf(&list.Items[i]); err == nil && m == MeshIstio {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
