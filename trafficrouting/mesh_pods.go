package trafficrouting

// Lane pods: the MeshRouteReconciler reads whether a hop's lane and base pods are Ready, which
// the manager's cache does not keep (it holds pods as metadata only, for the label reconciler).
// So the reconciler reads pods from caches of its own, one per mesh served, each holding only the
// pods that carry that mesh's lane label, trimmed by CacheTransform. controller-runtime keys an
// informer's configuration by kind, so a typed Pod informer in the manager's cache would share the
// metadata informer's (unselected) namespaces and hold every pod.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// lanePodSelector selects the pods that carry a mesh's lane label (whatever its value).
func lanePodSelector(label string) (labels.Selector, error) {
	req, err := labels.NewRequirement(label, selection.Exists, nil)
	if err != nil {
		return nil, fmt.Errorf("select pods by label %s: %w", label, err)
	}
	return labels.NewSelector().Add(*req), nil
}

// lanePodCacheOptions configure the cache of the pods that carry the label: in namespaces only
// (all when empty), stored as CacheTransform trims them.
func lanePodCacheOptions(mgr ctrl.Manager, label string, namespaces []string) (cache.Options, error) {
	sel, err := lanePodSelector(label)
	if err != nil {
		return cache.Options{}, err
	}
	opts := cache.Options{
		HTTPClient:        mgr.GetHTTPClient(),
		Scheme:            mgr.GetScheme(),
		Mapper:            mgr.GetRESTMapper(),
		DefaultTransform:  CacheTransform,
		DefaultNamespaces: CacheNamespaces(namespaces),
		ByObject:          map[client.Object]cache.ByObject{&corev1.Pod{}: {Label: sel}},
	}
	return opts, nil
}

// setUpLanePods creates, for each mesh served, the cache of its lane pods, adds it to the
// manager, registers the lane pod index on it and returns it with the source of its pods'
// events (lanePodChanges, mapped to hops by hopsOf).
func (r *MeshRouteReconciler) setUpLanePods(mgr ctrl.Manager) ([]source.TypedSource[meshRequest], error) {
	var podIndexes []meshIndex
	for _, idx := range meshIndexes(r.Meshes, r.CloneSets) {
		if _, ok := idx.obj.(*corev1.Pod); ok {
			podIndexes = append(podIndexes, idx)
		}
	}
	r.lanePods = map[string]client.Reader{}
	var sources []source.TypedSource[meshRequest]
	for _, m := range r.Meshes {
		f, ok := flavorOf(m)
		if !ok {
			continue
		}
		if _, done := r.lanePods[f.label]; done {
			continue
		}
		opts, err := lanePodCacheOptions(mgr, f.label, r.PodNamespaces)
		if err != nil {
			return nil, err
		}
		c, err := cache.New(mgr.GetConfig(), opts)
		if err != nil {
			return nil, fmt.Errorf("create the cache of the pods labelled %s: %w", f.label, err)
		}
		for _, idx := range podIndexes {
			if err := c.IndexField(context.Background(), idx.obj, idx.field, idx.extract); err != nil {
				return nil, fmt.Errorf("index the pods labelled %s by %s: %w", f.label, idx.field, err)
			}
		}
		if err := mgr.Add(c); err != nil {
			return nil, fmt.Errorf("add the cache of the pods labelled %s: %w", f.label, err)
		}
		r.lanePods[f.label] = c
		sources = append(sources, source.TypedKind(c, client.Object(&corev1.Pod{}), handler.TypedEnqueueRequestsFromMapFunc(r.hopsOf), lanePodChanges()))
	}
	return sources, nil
}

// podReader is where the reconciler reads the pods that carry a mesh's lane label: that mesh's
// lane pod cache (setUpLanePods), or Client where none was set up (unit tests).
func (r *MeshRouteReconciler) podReader(label string) client.Reader {
	if c, ok := r.lanePods[label]; ok {
		return c
	}
	return r.Client
}
