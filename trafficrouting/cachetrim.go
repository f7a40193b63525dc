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
// StatefulSet and CloneSet of the namespaces it watches, and Kruise Lanes reads a few fields of
// them; CacheTransform stores a new object with only those fields, so the cache's heap follows
// the number of objects, not the size of their pod templates and statuses:
//
//   - every kind: its metadata, without managedFields (the provider installer, the only reader
//     of managedFields, reads Kruise's ConfigMap from the API server);
//   - Pod, ReplicaSet, Deployment, StatefulSet, CloneSet: also without kubectl's
//     last-applied-configuration annotation (a copy of the manifest; nothing reads it);
//   - Pod: only status.conditions[Ready] (type and status) beside its metadata: the resolver and
//     the label reconciler read labels, annotations, owner references and the deletion
//     timestamp; the mesh route reconciler and lane analysis whether it is Ready;
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
// For the five kinds it trims CacheTransform returns a new object and leaves its argument as it
// was (the maps it keeps are the decoded object's, which the informer then drops); other objects
// lose their managedFields in place. Applying it to an object it returned gives an equal object.
// Objects read without a deep copy (client.UnsafeDisableDeepCopy, as the mesh route reconciler
// does) are only read, never modified.
func CacheTransform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return trimPod(o), nil
	case *appsv1.ReplicaSet:
		return &appsv1.ReplicaSet{TypeMeta: o.TypeMeta, ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *appsv1.Deployment:
		out := &appsv1.Deployment{TypeMeta: o.TypeMeta, ObjectMeta: trimMeta(o.ObjectMeta)}
		out.Spec.Selector = o.Spec.Selector
		out.Spec.Template.Labels = o.Spec.Template.Labels
		return out, nil
	case *appsv1.StatefulSet:
		out := &appsv1.StatefulSet{TypeMeta: o.TypeMeta, ObjectMeta: trimMeta(o.ObjectMeta)}
		out.Spec.Selector = o.Spec.Selector
		out.Spec.Template.Labels = o.Spec.Template.Labels
		out.Status.UpdateRevision, out.Status.CurrentRevision = o.Status.UpdateRevision, o.Status.CurrentRevision
		return out, nil
	case *unstructured.Unstructured:
		if o.GroupVersionKind().GroupKind() == CloneSetGVK.GroupKind() {
			return trimCloneSet(o), nil
		}
	}
	return stripManagedFields(obj)
}

var stripManagedFields = cache.TransformStripManagedFields()

// trimMeta is an object's metadata as the cache keeps it.
func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	m.ManagedFields = nil
	if _, ok := m.Annotations[lastAppliedAnnotation]; ok {
		annotations := make(map[string]string, len(m.Annotations)-1)
		for k, v := range m.Annotations {
			if k != lastAppliedAnnotation {
				annotations[k] = v
			}
		}
		m.Annotations = annotations
	}
	return m
}

func trimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{TypeMeta: p.TypeMeta, ObjectMeta: trimMeta(p.ObjectMeta)}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
			break
		}
	}
	return out
}

// cloneSetPaths are the fields of a CloneSet beside its metadata that the cache keeps.
var cloneSetPaths = [][]string{
	{"spec", "selector"},
	{"spec", "template", "metadata", "labels"},
	{"status", "updateRevision"},
	{"status", "currentRevision"},
}

func trimCloneSet(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{}}
	out.SetAPIVersion(u.GetAPIVersion())
	out.SetKind(u.GetKind())
	if m, ok := u.Object["metadata"].(map[string]any); ok {
		meta := make(map[string]any, len(m))
		for k, v := range m {
			meta[k] = v
		}
		delete(meta, "managedFields")
		out.Object["metadata"] = meta
		if annotations := out.GetAnnotations(); hasKey(annotations, lastAppliedAnnotation) {
			delete(annotations, lastAppliedAnnotation)
			out.SetAnnotations(annotations)
		}
	}
	for _, path := range cloneSetPaths {
		if v, found, err := unstructured.NestedFieldNoCopy(u.Object, path...); err == nil && found {
			// Set in a fresh map chain; v itself is only shared with the decoded object, which the
			// informer drops.
			_ = unstructured.SetNestedField(out.Object, v, path...)
		}
	}
	return out
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

var _ toolscache.TransformFunc = CacheTransform
