package trafficrouting

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// lastAppliedAnnotation is where `kubectl apply` keeps a copy of the whole manifest it applied.
const lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

// CacheTransform is the transform lanes-manager's informer cache applies to every object before
// storing it (cache.Options.DefaultTransform). The cache holds every Pod, ReplicaSet, Deployment,
// StatefulSet and CloneSet of the namespaces it watches (Pods as metadata only: the label
// reconciler's informer is a metadata one; the mesh route reconciler's own caches hold the typed
// lane pods, see MeshRouteReconciler), and Kruise Lanes reads a few fields of
// them; CacheTransform stores a new object with only those fields, so the cache's heap follows
// the number of objects, not the size of their pod templates and statuses:
//
//   - every kind: its metadata, without managedFields (the provider installer, the only reader
//     of managedFields, reads Kruise's ConfigMap from the API server);
//   - Pod, ReplicaSet, Deployment, StatefulSet, CloneSet: also without kubectl's
//     last-applied-configuration annotation (a copy of the manifest; nothing reads it);
//   - metadata-only objects (PartialObjectMetadata: the Pods of the label reconciler, which reads
//     labels, annotations, owner references and the deletion timestamp): also without kubectl's
//     last-applied-configuration annotation;
//   - Pod (typed: the mesh route reconciler's lane pods): only status.conditions[Ready] (type
//     and status) beside its metadata, for whether it is Ready;
//   - ReplicaSet: metadata only (the resolver follows its controller owner reference to the
//     Deployment). Its pod template is NOT kept: laneops.RollBack reads a stable template from
//     the API server;
//   - Deployment: spec.selector (the resolver protects its keys, the reconciler and laneops list
//     its pods) and spec.template.metadata.labels (the mesh route reconciler finds a member's
//     Services by them); its revision markers are labels;
//   - StatefulSet, CloneSet (unstructured, apps.kruise.io): the same two, and
//     status.updateRevision and status.currentRevision (RoleOf);
//   - any other object (Rollouts, TrafficRoutings, Services, mesh objects, metadata-only
//     Ingresses, ...): whole, without managedFields.
//
// An object read from the cache is therefore only good for the decisions above: code that needs
// another field of these kinds reads it with the manager's API reader. Writes never send a cached
// object back: the label reconciler patches labels and annotations only (a JSON merge patch), and
// the rollback a JSON patch of the template, so no trimmed field is ever erased on the server.
// CacheTransform trims the object the informer decoded in place (like
// cache.TransformStripManagedFields): the kept struct is the decoded one and only what it drops
// becomes garbage, so trimming allocates next to nothing and leaves no second copy of each object
// in the heap. Applying it to an object it returned gives an equal object. Objects read without a
// deep copy (client.UnsafeDisableDeepCopy, as the mesh route reconciler does) are only read,
// never modified.
func CacheTransform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		trimMeta(&o.ObjectMeta)
		var ready []corev1.PodCondition
		for _, c := range o.Status.Conditions {
			if c.Type == corev1.PodReady {
				ready = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
				break
			}
		}
		o.Spec, o.Status = corev1.PodSpec{}, corev1.PodStatus{Conditions: ready}
		return o, nil
	case *appsv1.ReplicaSet:
		trimMeta(&o.ObjectMeta)
		o.Spec, o.Status = appsv1.ReplicaSetSpec{}, appsv1.ReplicaSetStatus{}
		return o, nil
	case *appsv1.Deployment:
		trimMeta(&o.ObjectMeta)
		o.Spec = appsv1.DeploymentSpec{Selector: o.Spec.Selector, Template: templateLabels(o.Spec.Template)}
		o.Status = appsv1.DeploymentStatus{}
		return o, nil
	case *appsv1.StatefulSet:
		trimMeta(&o.ObjectMeta)
		o.Spec = appsv1.StatefulSetSpec{Selector: o.Spec.Selector, Template: templateLabels(o.Spec.Template)}
		o.Status = appsv1.StatefulSetStatus{UpdateRevision: o.Status.UpdateRevision, CurrentRevision: o.Status.CurrentRevision}
		return o, nil
	case *metav1.PartialObjectMetadata:
		trimMeta(&o.ObjectMeta)
		return o, nil
	case *unstructured.Unstructured:
		if o.GroupVersionKind().GroupKind() == CloneSetGVK.GroupKind() {
			return trimCloneSet(o), nil
		}
	}
	return stripManagedFields(obj)
}

var stripManagedFields = cache.TransformStripManagedFields()

// trimMeta removes from an object's metadata what the cache does not keep.
func trimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	delete(m.Annotations, lastAppliedAnnotation)
}

// templateLabels is a pod template with only its labels.
func templateLabels(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: t.Labels}}
}

// cloneSetPaths are the fields of a CloneSet beside its metadata that the cache keeps.
var cloneSetPaths = [][]string{
	{"spec", "selector"},
	{"spec", "template", "metadata", "labels"},
	{"status", "updateRevision"},
	{"status", "currentRevision"},
}

func trimCloneSet(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{"apiVersion": u.Object["apiVersion"], "kind": u.Object["kind"]}}
	if m, ok := u.Object["metadata"].(map[string]any); ok {
		delete(m, "managedFields")
		if a, ok := m["annotations"].(map[string]any); ok {
			delete(a, lastAppliedAnnotation)
		}
		out.Object["metadata"] = m
	}
	for _, path := range cloneSetPaths {
		if v, found, err := unstructured.NestedFieldNoCopy(u.Object, path...); err == nil && found {
			_ = unstructured.SetNestedField(out.Object, v, path...)
		}
	}
	return out
}

var _ toolscache.TransformFunc = CacheTransform

// CacheNamespaces is the cache configuration that watches the given namespaces (nil for all):
// how --watch-namespaces scopes both the manager's pod-sized informers and the mesh route
// reconciler's lane pod caches.
func CacheNamespaces(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	out := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		out[ns] = cache.Config{}
	}
	return out
}
