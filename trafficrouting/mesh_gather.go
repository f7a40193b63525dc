package trafficrouting

// Gathering: what one hop of a mesh lane is made from. The MeshRouteReconciler reads, through the
// cache's indexes (mesh_index.go), only what concerns one member Service: whether a Routable
// member of the lane releases pods it selects, whether an object Kruise Lanes did not write for
// the lane is in its way, and whether it has Ready lane and base pods.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// laneRouting is a lane that routes its hops: resolved, on a mesh that is served.
type laneRouting struct {
	lane   Lane
	flavor meshFlavor
}

// hop gathers the hop of one Service of a routing lane; false when the Service is not a hop of
// the lane now: gone, written by Kruise Lanes (a lane or base Service), without a selector, selecting no pod template of a Routable member, or in
// the way of an object Kruise Lanes did not write for the lane (a Warning Event says which).
func (r *MeshRouteReconciler) hop(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, routing laneRouting, service string) (Hop, bool, error) {
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: tr.Namespace, Name: service}, svc); err != nil {
		return Hop{}, false, ignoreNotFound(err, "service", tr.Namespace, service)
	}
	if _, _, written := hopOfObject(svc); written || len(svc.Spec.Selector) == 0 {
		return Hop{}, false, nil
	}
	member, err := r.selectsMember(ctx, tr, svc.Spec.Selector)
	if err != nil || !member {
		return Hop{}, false, err
	}
	by, err := r.inTheWay(ctx, tr, routing, service)
	if err != nil {
		return Hop{}, false, err
	}
	if by != nil {
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteConflict",
			"service %s is routed by %s %s, which Kruise Lanes did not write for this lane; its lane route is not written: delete or merge that object", service, by.GetKind(), by.GetName())
		return Hop{}, false, nil
	}
	pods := &corev1.PodList{}
	if err := r.podReader(routing.flavor.label).List(ctx, pods, client.InNamespace(tr.Namespace), client.MatchingFields{lanePodIndex: selectorKey(svc.Spec.Selector)}, client.UnsafeDisableDeepCopy); err != nil {
		return Hop{}, false, fmt.Errorf("list the lane pods of service %s/%s: %w", tr.Namespace, service, err)
	}
	h := Hop{Service: service, Selector: svc.Spec.Selector, Ports: svc.Spec.Ports}
	h.LaneReady, h.BaseReady = readiness(svc.Spec.Selector, pods.Items, routing.lane.Tag, routing.flavor.label)
	return h, true, nil
}

// selectsMember reports whether the selector selects the pod template of a workload a Routable
// member of the lane releases.
func (r *MeshRouteReconciler) selectsMember(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, selector map[string]string) (bool, error) {
	for _, k := range workloadKinds(r.CloneSets) {
		list := k.NewList()
		if err := r.Client.List(ctx, list, client.InNamespace(tr.Namespace), client.MatchingFields{templateLabelIndex: selectorKey(selector)}, client.UnsafeDisableDeepCopy); err != nil {
			return false, fmt.Errorf("list %ss in %s: %w", strings.ToLower(k.Kind()), tr.Namespace, err)
		}
		var names []string
		if err := meta.EachListItem(list, func(o runtime.Object) error {
			if w, ok := o.(client.Object); ok && ServiceSelects(selector, k.TemplateLabels(w)) {
				names = append(names, w.GetName())
			}
			return nil
		}); err != nil {
			return false, fmt.Errorf("read %ss in %s: %w", strings.ToLower(k.Kind()), tr.Namespace, err)
		}
		for _, name := range names {
			rollouts := &rolloutsv1beta1.RolloutList{}
			if err := r.Client.List(ctx, rollouts, client.InNamespace(tr.Namespace), client.MatchingFields{RolloutWorkloadIndex: workloadKey(k.Kind(), name)}, client.UnsafeDisableDeepCopy); err != nil {
				return false, fmt.Errorf("list rollouts of %s %s/%s: %w", k.Kind(), tr.Namespace, name, err)
			}
			if len(routedMembers(tr.Name, rollouts.Items)) > 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// inTheWay returns an object of the lane's mesh that Kruise Lanes did not write for this lane and
// that routes the Service (routedServices), or nil when there is none.
func (r *MeshRouteReconciler) inTheWay(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, routing laneRouting, service string) (*unstructured.Unstructured, error) {
	for _, gvk := range routing.flavor.kinds {
		var objs []*unstructured.Unstructured
		if gvk == ServiceGVK {
			for _, name := range []string{LaneServiceName(service, routing.lane.Tag), LaneServiceName(service, BaseTag)} {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(gvk)
				err := r.Client.Get(ctx, types.NamespacedName{Namespace: tr.Namespace, Name: name}, u)
				if apierrors.IsNotFound(err) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("get service %s/%s: %w", tr.Namespace, name, err)
				}
				objs = append(objs, u)
			}
		} else {
			// Only read: not copied out of the cache.
			var err error
			if objs, err = r.list(ctx, tr.Namespace, gvk, client.MatchingFields{meshRoutesIndex: service}, client.UnsafeDisableDeepCopy); err != nil {
				return nil, err
			}
		}
		for _, o := range objs {
			if !IsLaneMeshObject(o, tr.Name) && slices.Contains(routedServices(o, routing.lane.Tag), service) {
				return o, nil
			}
		}
	}
	return nil, nil
}

// routedMembers are the Rollouts of the lane named lane that are Routable, in list order.
func routedMembers(lane string, rollouts []rolloutsv1beta1.Rollout) []*rolloutsv1beta1.Rollout {
	var out []*rolloutsv1beta1.Rollout
	for i := range rollouts {
		if ro := &rollouts[i]; ro.Annotations[TrafficRoutingAnnotation] == lane && Routable(ro) {
			out = append(out, ro)
		}
	}
	return out
}

// readiness reports whether the pods a Service selector selects include a lane pod (label holds
// tag) and a base pod (label holds BaseTag) that is Ready and not being deleted.
func readiness(selector map[string]string, pods []corev1.Pod, tag, label string) (laneReady, baseReady bool) {
	for i := range pods {
		p := &pods[i]
		value := p.Labels[label]
		if (value != tag && value != BaseTag) || !p.DeletionTimestamp.IsZero() || !podReady(p) || !ServiceSelects(selector, p.Labels) {
			continue
		}
		if value == tag {
			laneReady = true
		} else {
			baseReady = true
		}
	}
	return laneReady, baseReady
}

// laneServices are the Services a whole-lane reconcile looks at, sorted: those that select the
// pod template of a Routable member (when the lane routes) and those the lane has mesh objects
// for.
func (r *MeshRouteReconciler) laneServices(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, routes bool) ([]string, error) {
	var out []string
	add := func(svc string) {
		if !slices.Contains(out, svc) {
			out = append(out, svc)
		}
	}
	if routes {
		rollouts := &rolloutsv1beta1.RolloutList{}
		if err := r.Client.List(ctx, rollouts, client.InNamespace(tr.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list rollouts in %s: %w", tr.Namespace, err)
		}
		for _, ro := range routedMembers(tr.Name, rollouts.Items) {
			template, err := r.templateLabels(ctx, ro)
			if err != nil {
				return nil, err
			}
			services, err := r.servicesSelecting(ctx, tr.Namespace, template)
			if err != nil {
				return nil, err
			}
			for _, svc := range services {
				add(svc)
			}
		}
	}
	owned, err := r.ownedObjects(ctx, tr)
	if err != nil {
		return nil, err
	}
	for _, o := range owned {
		if _, svc, _ := hopOfObject(o); svc != "" {
			add(svc)
		}
	}
	slices.Sort(out)
	return out, nil
}

// servicesSelecting are the names of the Services in the namespace whose selector selects the
// labels, sorted; not the lane and base Services Kruise Lanes wrote, which are never a hop.
func (r *MeshRouteReconciler) servicesSelecting(ctx context.Context, namespace string, labels map[string]string) ([]string, error) {
	var out []string
	for k, v := range labels {
		list := &corev1.ServiceList{}
		if err := r.Client.List(ctx, list, client.InNamespace(namespace), client.MatchingFields{serviceSelectorIndex: labelPair(k, v)}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list services in %s: %w", namespace, err)
		}
		for i := range list.Items {
			if _, _, written := hopOfObject(&list.Items[i]); !written && ServiceSelects(list.Items[i].Spec.Selector, labels) {
				out = append(out, list.Items[i].Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// templateLabels are the pod template labels of a Rollout's workload.
func (r *MeshRouteReconciler) templateLabels(ctx context.Context, ro *rolloutsv1beta1.Rollout) (map[string]string, error) {
	k, ok := WorkloadKindNamed(ro.Spec.WorkloadRef.Kind)
	if !ok || (k.Optional() && !r.CloneSets) {
		return nil, nil
	}
	key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Spec.WorkloadRef.Name}
	w := k.New()
	if err := r.Client.Get(ctx, key, w); err != nil {
		return nil, ignoreNotFound(err, strings.ToLower(k.Kind()), key.Namespace, key.Name)
	}
	return k.TemplateLabels(w), nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *MeshRouteReconciler) list(ctx context.Context, namespace string, gvk schema.GroupVersionKind, opts ...client.ListOption) ([]*unstructured.Unstructured, error) {
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

// ownedObjects are the mesh objects Kruise Lanes wrote for this lane, of every installed mesh.
func (r *MeshRouteReconciler) ownedObjects(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range r.ownedKinds() {
		// Only read: not copied out of the cache.
		objs, err := r.list(ctx, tr.Namespace, gvk, client.MatchingLabels{ManagedByLabel: ManagedByValue, MeshLaneLabel: tr.Name}, client.UnsafeDisableDeepCopy)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// hopObjects are the mesh objects Kruise Lanes wrote for one hop of this lane, of every installed
// mesh.
func (r *MeshRouteReconciler) hopObjects(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, service string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range r.ownedKinds() {
		// Only read (compared, deleted): not copied out of the cache.
		objs, err := r.list(ctx, tr.Namespace, gvk, client.MatchingFields{meshHopIndex: hopKey(tr.Name, service)}, client.UnsafeDisableDeepCopy)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}
