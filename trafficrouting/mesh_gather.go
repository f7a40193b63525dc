package trafficrouting

// Gathering: what a mesh lane's routes are made from. The MeshRouteReconciler reads the listed
// objects (hops); pure functions of those objects decide which members and Services the lane
// routes, which of them someone else's object blocks, and whether each hop has Ready lane and base
// pods.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// hops gathers the member Services of the lane's releasing members and whether each has Ready
// lane and base pods. Services for which a mesh object Kruise Lanes did not write for this lane
// is in the way are left out, each with a Warning Event.
//
// Every pod event of a namespace reconciles its mesh lanes, so this stays linear in the objects
// of the namespace: Services are indexed by one pair of their selector, each pod and each pod
// template is matched only against the Services that pair names, objects read from the cache
// are not copied (they are only read), and what a step does not need is not read: no member
// Service (the usual case for a pod event) reads no mesh object and no pod.
func (r *MeshRouteReconciler) hops(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, lane Lane, flavor meshFlavor) ([]Hop, error) {
	rollouts := &rolloutsv1beta1.RolloutList{}
	if err := r.Client.List(ctx, rollouts, client.InNamespace(tr.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list rollouts in %s: %w", tr.Namespace, err)
	}
	services := &corev1.ServiceList{}
	if err := r.Client.List(ctx, services, client.InNamespace(tr.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list services in %s: %w", tr.Namespace, err)
	}
	index := indexServices(services.Items)
	var templates []map[string]string
	for _, ro := range routedMembers(tr.Name, rollouts.Items) {
		template, err := r.templateLabels(ctx, ro)
		if err != nil {
			return nil, err
		}
		templates = append(templates, template)
	}
	candidates := index.memberServices(templates)
	if len(candidates) == 0 {
		return nil, nil
	}

	foreign, err := r.foreignObjects(ctx, tr, flavor)
	if err != nil {
		return nil, err
	}
	hops, conflicts := unblockedHops(candidates, flavor.blockers(foreign, lane))
	for _, c := range conflicts {
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteConflict",
			"service %s is routed by %s %s, which Kruise Lanes did not write for this lane; its lane route is not written: delete or merge that object", c.service, c.by.GetKind(), c.by.GetName())
	}
	if len(hops) == 0 {
		return nil, nil
	}

	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(tr.Namespace), client.HasLabels{flavor.label}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", tr.Namespace, err)
	}
	markReady(hops, index, pods.Items, lane.Tag, flavor.label)
	return hops, nil
}

// serviceIndex finds the Services whose selector selects a set of labels without trying every
// Service: each Service with a selector is filed under the smallest key of its selector and that
// key's value, which any label set it selects must carry.
type serviceIndex map[string][]*corev1.Service

func indexServices(services []corev1.Service) serviceIndex {
	idx := serviceIndex{}
	for i := range services {
		sel := services[i].Spec.Selector
		if len(sel) == 0 {
			continue
		}
		first := ""
		for k := range sel {
			if first == "" || k < first {
				first = k
			}
		}
		key := first + "=" + sel[first]
		idx[key] = append(idx[key], &services[i])
	}
	return idx
}

// selecting returns the Services whose selector selects labels, each once, in index order.
func (idx serviceIndex) selecting(labels map[string]string) []*corev1.Service {
	var out []*corev1.Service
	for k, v := range labels {
		for _, svc := range idx[k+"="+v] {
			if ServiceSelects(svc.Spec.Selector, labels) {
				out = append(out, svc)
			}
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	return out
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

// memberServices are the Services that select the pod templates of the lane's members, each
// once, in the order of the templates.
func (idx serviceIndex) memberServices(templates []map[string]string) []*corev1.Service {
	var out []*corev1.Service
	seen := map[string]bool{}
	for _, template := range templates {
		for _, svc := range idx.selecting(template) {
			if !seen[svc.Name] {
				seen[svc.Name] = true
				out = append(out, svc)
			}
		}
	}
	return out
}

// hopConflict is a member Service that an object Kruise Lanes did not write for the lane routes.
type hopConflict struct {
	service string
	by      *unstructured.Unstructured
}

// unblockedHops makes a hop of each member Service that no foreign object blocks (blockers maps
// a Service name to the object in its way), and a conflict of each one blocked.
func unblockedHops(candidates []*corev1.Service, blockers map[string]*unstructured.Unstructured) ([]Hop, []hopConflict) {
	var hops []Hop
	var conflicts []hopConflict
	for _, svc := range candidates {
		if other := blockers[svc.Name]; other != nil {
			conflicts = append(conflicts, hopConflict{service: svc.Name, by: other})
			continue
		}
		hops = append(hops, Hop{Service: svc.Name, Selector: svc.Spec.Selector, Ports: svc.Spec.Ports})
	}
	return hops, conflicts
}

// markReady sets each hop's LaneReady and BaseReady from the pods: a hop is ready for the lane
// (or its base) when one of the pods its Service selects is Ready, not being deleted, and
// carries label with the lane's tag (or BaseTag).
func markReady(hops []Hop, index serviceIndex, pods []corev1.Pod, tag, label string) {
	member := make(map[string]int, len(hops)) // member Service → its hop
	for i, h := range hops {
		member[h.Service] = i
	}
	for i := range pods {
		p := &pods[i]
		value := p.Labels[label]
		if (value != tag && value != BaseTag) || !p.DeletionTimestamp.IsZero() || !podReady(p) {
			continue
		}
		for _, svc := range index.selecting(p.Labels) {
			if h, ok := member[svc.Name]; ok {
				if value == tag {
					hops[h].LaneReady = true
				} else {
					hops[h].BaseReady = true
				}
			}
		}
	}
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
		// Only read (compared, deleted): not copied out of the cache.
		objs, err := r.list(ctx, tr.Namespace, gvk, client.MatchingLabels{ManagedByLabel: ManagedByValue, MeshLaneLabel: tr.Name}, client.UnsafeDisableDeepCopy)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// foreignObjects are the objects of the mesh's kinds in the lane's namespace that Kruise Lanes did
// not write for this lane.
func (r *MeshRouteReconciler) foreignObjects(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, flavor meshFlavor) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range flavor.kinds {
		// Only read: not copied out of the cache.
		objs, err := r.list(ctx, tr.Namespace, gvk, client.UnsafeDisableDeepCopy)
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
