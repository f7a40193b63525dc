package trafficrouting

// Indexes: the informer cache's field indexes the MeshRouteReconciler reads a hop through, so a
// reconcile reads the objects its hop touches, never every object of the lane or the namespace.

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The field indexes the MeshRouteReconciler registers (meshIndexes) and reads.
const (
	// serviceSelectorIndex files a Service with a selector under selectorKey of its selector.
	serviceSelectorIndex = AnnotationPrefix + "service-selector"
	// templateLabelIndex files a workload under each label of its pod template ("key=value").
	templateLabelIndex = AnnotationPrefix + "template-label"
	// lanePodIndex files a pod that carries a mesh's lane label under each of its labels
	// ("key=value"); other pods are not filed. It is registered on the lane pod caches
	// (mesh_pods.go), not on the manager's.
	lanePodIndex = AnnotationPrefix + "lane-pod-label"
	// meshHopIndex files a mesh object Kruise Lanes wrote under hopKey of its lane and Service.
	meshHopIndex = AnnotationPrefix + "mesh-hop"
	// meshRoutesIndex files a VirtualService, DestinationRule or HTTPRoute under each Service of
	// its namespace it routes (routedServices), which such an object not written for a lane
	// keeps that lane from routing.
	meshRoutesIndex = AnnotationPrefix + "mesh-routes"
)

// meshIndex is one field index: the kind it files, its name and the values it files an object
// under.
type meshIndex struct {
	obj     client.Object
	field   string
	extract client.IndexerFunc
}

// meshIndexes are the indexes the MeshRouteReconciler reads, for the meshes served and, with
// cloneSets, CloneSets. It also reads RolloutWorkloadIndex, which lanes-manager registers for the
// Resolver.
func meshIndexes(meshes []Mesh, cloneSets bool) []meshIndex {
	out := []meshIndex{
		{obj: &corev1.Service{}, field: serviceSelectorIndex, extract: func(o client.Object) []string {
			svc, ok := o.(*corev1.Service)
			if !ok || len(svc.Spec.Selector) == 0 {
				return nil
			}
			return []string{selectorKey(svc.Spec.Selector)}
		}},
		{obj: &corev1.Pod{}, field: lanePodIndex, extract: func(o client.Object) []string {
			if !hasMeshLabel(o) {
				return nil
			}
			return labelPairs(o.GetLabels())
		}},
	}
	for _, k := range workloadKinds(cloneSets) {
		out = append(out, meshIndex{obj: k.New(), field: templateLabelIndex, extract: func(o client.Object) []string {
			return labelPairs(k.TemplateLabels(o))
		}})
	}
	for _, gvk := range meshKinds(meshes) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		out = append(out, meshIndex{obj: u, field: meshHopIndex, extract: func(o client.Object) []string {
			lane, service, ok := hopOfObject(o)
			if !ok {
				return nil
			}
			return []string{hopKey(lane, service)}
		}})
		if gvk == ServiceGVK {
			continue // a Service is in the way by its name, read directly
		}
		u = &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		out = append(out, meshIndex{obj: u, field: meshRoutesIndex, extract: func(o client.Object) []string {
			return routedServices(o, "")
		}})
	}
	return out
}

// workloadKinds are the workload kinds a member can release here.
func workloadKinds(cloneSets bool) []WorkloadKind {
	kinds := []WorkloadKind{DeploymentKind, StatefulSetKind}
	if cloneSets {
		kinds = append(kinds, CloneSetKind)
	}
	return kinds
}

// labelPair is how the indexes file a label: "key=value".
func labelPair(k, v string) string { return k + "=" + v }

// labelPairs are the labelPair of every label, sorted.
func labelPairs(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, labelPair(k, v))
	}
	slices.Sort(out)
	return out
}

// selectorKey is the labelPair of a selector's smallest key, which every label set the selector
// selects carries: the one index value that finds them all.
func selectorKey(selector map[string]string) string {
	first := ""
	for k := range selector {
		if first == "" || k < first {
			first = k
		}
	}
	return labelPair(first, selector[first])
}

// hopKey is the meshHopIndex value of a lane's hop.
func hopKey(lane, service string) string { return lane + "/" + service }

// hopOfObject returns the lane and the member Service a mesh object Kruise Lanes wrote belongs to
// (service is empty for an object without MeshServiceLabel); false for any other object.
func hopOfObject(o client.Object) (lane, service string, ok bool) {
	l := o.GetLabels()
	if l[ManagedByLabel] != ManagedByValue || l[MeshLaneLabel] == "" {
		return "", "", false
	}
	return l[MeshLaneLabel], l[MeshServiceLabel], true
}

// meshLabelKeys are the pod labels the meshes select lane and base pods by.
func meshLabelKeys() []string {
	var keys []string
	for _, m := range allMeshes {
		if f, ok := flavorOf(m); ok {
			keys = append(keys, f.label)
		}
	}
	return keys
}

// hasMeshLabel reports whether an object carries a mesh's lane label.
func hasMeshLabel(o client.Object) bool {
	for _, k := range meshLabelKeys() {
		if _, ok := o.GetLabels()[k]; ok {
			return true
		}
	}
	return false
}
