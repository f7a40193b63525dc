package trafficrouting

import (
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// The Istio kinds Kruise Lanes writes, at the version Istio 1.22+ serves as storage.
var (
	VirtualServiceGVK  = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}
	DestinationRuleGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"}
)

// Labels on every mesh object Kruise Lanes writes. Only objects carrying ManagedByLabel with
// ManagedByValue are ever changed or deleted by it.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedByValue = "kruise-lanes"
	// MeshLaneLabel names the TrafficRouting a mesh object belongs to.
	MeshLaneLabel = AnnotationPrefix + "trafficrouting"
	// MeshServiceLabel names the member Service a mesh object routes.
	MeshServiceLabel = AnnotationPrefix + "service"
)

// Subset and route names in the Istio objects.
const (
	baseSubset = BaseTag
	baseRoute  = "base"
	laneRoute  = "lane-"
)

// Hop is one member Service of a releasing lane member, with what its pods say now.
type Hop struct {
	// Service is the member Service's name (same namespace as the lane).
	Service string
	// LaneReady is true while at least one Ready pod of the Service carries the lane label.
	LaneReady bool
	// BaseReady is true while at least one Ready pod of the Service carries the base label.
	BaseReady bool
	// Selector and Ports are the member Service's (gateway-api lanes copy them into the lane and
	// base Services).
	Selector map[string]string
	Ports    []corev1.ServicePort
}

// MeshObjectName is the name of the DestinationRule and the VirtualService of a member Service.
func MeshObjectName(service string) string { return "lanes-" + service }

// IstioObjects renders the objects that route one hop of an istio lane, DestinationRule first:
// a DestinationRule for the Service host with subsets base (the base label) and <tag> (the lane
// label), and a VirtualService that sends "<lane header>: <tag>" to subset <tag> only while the
// hop has Ready lane pods, and everything else to subset base — or, while no base pod is Ready
// (the last batch of a release), to the Service as a whole. A subset is thus never routed to
// while it has no Ready pod: fallback holds by construction, not by a retry policy.
func IstioObjects(lane Lane, owner metav1.OwnerReference, hop Hop) []*unstructured.Unstructured {
	meta := func(gvk schema.GroupVersionKind) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetGroupVersionKind(gvk)
		u.SetNamespace(lane.Namespace)
		u.SetName(MeshObjectName(hop.Service))
		u.SetLabels(map[string]string{ManagedByLabel: ManagedByValue, MeshLaneLabel: lane.Name, MeshServiceLabel: hop.Service})
		u.SetOwnerReferences([]metav1.OwnerReference{owner})
		return u
	}
	dr := meta(DestinationRuleGVK)
	dr.Object["spec"] = map[string]any{
		"host": hop.Service,
		"subsets": []any{
			map[string]any{"name": baseSubset, "labels": map[string]any{LabelIstio: BaseTag}},
			map[string]any{"name": lane.Tag, "labels": map[string]any{LabelIstio: lane.Tag}},
		},
	}

	destination := func(subset string) map[string]any {
		d := map[string]any{"host": hop.Service}
		if subset != "" {
			d["subset"] = subset
		}
		return map[string]any{"destination": d}
	}
	var routes []any
	if hop.LaneReady {
		routes = append(routes, map[string]any{
			"name":  laneRoute + lane.Tag,
			"match": []any{map[string]any{"headers": map[string]any{strings.ToLower(lane.Header): map[string]any{"exact": lane.Tag}}}},
			"route": []any{destination(lane.Tag)},
		})
	}
	fallback := ""
	if hop.BaseReady {
		fallback = baseSubset
	}
	routes = append(routes, map[string]any{"name": baseRoute, "route": []any{destination(fallback)}})
	vs := meta(VirtualServiceGVK)
	vs.Object["spec"] = map[string]any{"hosts": []any{hop.Service}, "http": routes}
	return []*unstructured.Unstructured{dr, vs}
}

// LaneOwner is the controller reference that ties a mesh object to its lane, so that deleting the
// TrafficRouting deletes its routes.
func LaneOwner(tr *rolloutsv1alpha1.TrafficRouting) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: rolloutsv1alpha1.GroupVersion.String(),
		Kind:       "TrafficRouting",
		Name:       tr.Name,
		UID:        tr.UID,
		Controller: ptr.To(true),
	}
}

// ServiceSelects reports whether a Service's selector selects pods with the given template
// labels. A Service without a selector selects nothing.
func ServiceSelects(selector, podLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	return labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

// IstioHostOf reports whether an Istio host names the Service in its namespace: the short name,
// <svc>.<ns>, <svc>.<ns>.svc or <svc>.<ns>.svc.<cluster domain>.
func IstioHostOf(host, service, namespace string) bool {
	return IstioHostService(host, namespace) == service
}

// IstioHostService returns the Service in the namespace that an Istio host names (see IstioHostOf),
// or "" when it names none there.
func IstioHostService(host, namespace string) string {
	parts := strings.Split(strings.ToLower(strings.TrimSuffix(host, ".")), ".")
	switch {
	case parts[0] == "" || parts[0] == "*":
		return ""
	case len(parts) == 1:
		return parts[0]
	case parts[1] != namespace:
		return ""
	case len(parts) == 2 || parts[2] == "svc":
		return parts[0]
	}
	return ""
}

// IstioObjectHosts returns the hosts an Istio VirtualService (spec.hosts) or DestinationRule
// (spec.host) routes.
func IstioObjectHosts(u *unstructured.Unstructured) []string {
	if u.GetKind() == DestinationRuleGVK.Kind {
		h, _, _ := unstructured.NestedString(u.Object, "spec", "host")
		return []string{h}
	}
	hs, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "hosts")
	return hs
}

// IsLaneMeshObject reports whether a mesh object was written by Kruise Lanes for the given lane.
func IsLaneMeshObject(u metav1.Object, lane string) bool {
	l := u.GetLabels()
	return l[ManagedByLabel] == ManagedByValue && l[MeshLaneLabel] == lane
}
