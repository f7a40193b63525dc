package trafficrouting

import (
	"fmt"
	"slices"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AnnotationMesh names the mesh that routes a lane's east-west hops (istio, gateway-api, none).
const AnnotationMesh = AnnotationPrefix + "mesh"

// Mesh is the kind of mesh that carries a lane between its members.
type Mesh string

// The mesh kinds.
const (
	// MeshNone: Kruise Lanes writes no east-west routes; pod labels only (MSE's agent, or ASM,
	// routes each hop by label).
	MeshNone Mesh = "none"
	// MeshIstio: Kruise Lanes writes a DestinationRule and a VirtualService per member Service.
	MeshIstio Mesh = "istio"
	// MeshGatewayAPI: Kruise Lanes writes Gateway API (GAMMA) routes per member Service.
	MeshGatewayAPI Mesh = "gateway-api"
)

var allMeshes = []Mesh{MeshNone, MeshIstio, MeshGatewayAPI}

// MeshOf decides which mesh routes a lane's hops: the TrafficRouting's kruise-lanes.io/mesh
// annotation when set, else what its entry implies. An Istio VirtualService entry implies istio,
// a Gateway API HTTPRoute entry implies gateway-api; any other entry (an mse or higress Ingress,
// whose data plane routes the hops itself, or any other Ingress) implies none: a mesh is never
// guessed.
func MeshOf(tr *rolloutsv1alpha1.TrafficRouting) (Mesh, error) {
	if v, ok := tr.Annotations[AnnotationMesh]; ok {
		m := Mesh(strings.TrimSpace(v))
		for _, known := range allMeshes {
			if m == known {
				return m, nil
			}
		}
		names := make([]string, 0, len(allMeshes))
		for _, known := range allMeshes {
			names = append(names, string(known))
		}
		return "", fmt.Errorf("unknown mesh %q; known: %s", v, strings.Join(names, ", "))
	}
	if len(tr.Spec.ObjectRef) == 0 {
		return MeshNone, nil
	}
	entry := tr.Spec.ObjectRef[0]
	if entry.Gateway != nil && entry.Gateway.HTTPRouteName != nil {
		return MeshGatewayAPI, nil
	}
	for _, ref := range entry.CustomNetworkRefs {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return "", fmt.Errorf("entry %s %s: %w", ref.Kind, ref.Name, err)
		}
		switch {
		case gv.Group == "networking.istio.io" && ref.Kind == "VirtualService":
			return MeshIstio, nil
		case gv.Group == "gateway.networking.k8s.io" && ref.Kind == "HTTPRoute":
			return MeshGatewayAPI, nil
		}
	}
	return MeshNone, nil
}

// withMesh adjusts a lane for the mesh that routes it. An istio lane selects its DestinationRule
// subsets by the istio dialect's label, a gateway-api lane selects its lane and base Services by
// the lanes dialect's label, and neither can select "pods without the lane label", so such a lane
// always carries its mesh's dialect and labels its stable pods "base".
func withMesh(lane Lane, m Mesh) Lane {
	var dialect Dialect
	switch m {
	case MeshIstio:
		dialect = DialectIstio
	case MeshGatewayAPI:
		dialect = DialectLanes
	default:
		return lane
	}
	lane.BaseLabels = true
	if slices.Contains(lane.Dialects, dialect) {
		return lane
	}
	lane.Dialects = append(append([]Dialect(nil), lane.Dialects...), dialect)
	return lane
}

// meshFlavor is what differs between the meshes Kruise Lanes writes routes for.
type meshFlavor struct {
	// label is the pod label whose value is the lane tag on lane pods and BaseTag on base pods.
	label string
	// kinds are the kinds written, in deletion order: routes before what they route to.
	kinds []schema.GroupVersionKind
	// render returns the objects that route one hop.
	render func(Lane, metav1.OwnerReference, Hop) ([]*unstructured.Unstructured, error)
}

// flavorOf returns how Kruise Lanes routes a mesh; false for MeshNone.
func flavorOf(m Mesh) (meshFlavor, bool) {
	switch m {
	case MeshIstio:
		return meshFlavor{
			label: LabelIstio,
			kinds: []schema.GroupVersionKind{VirtualServiceGVK, DestinationRuleGVK},
			render: func(lane Lane, owner metav1.OwnerReference, hop Hop) ([]*unstructured.Unstructured, error) {
				return IstioObjects(lane, owner, hop), nil
			},
		}, true
	case MeshGatewayAPI:
		return meshFlavor{
			label:  LabelLanes,
			kinds:  []schema.GroupVersionKind{HTTPRouteGVK, ServiceGVK},
			render: GatewayObjects,
		}, true
	}
	return meshFlavor{}, false
}

// routedServices are the Services of its namespace a mesh object routes, which it keeps a lane
// from routing when Kruise Lanes did not write it for that lane: for a VirtualService or a
// DestinationRule, the Service its lanes-<service> name and its hosts name; for an HTTPRoute, its
// Service parents; for a Service <service>-<tag> (the lane's tag, unless empty) or
// <service>-base, <service>.
func routedServices(o client.Object, tag string) []string {
	var out []string
	add := func(svc string) {
		if svc != "" && !slices.Contains(out, svc) {
			out = append(out, svc)
		}
	}
	u, isUnstructured := o.(*unstructured.Unstructured)
	switch {
	case isServiceObject(o):
		for _, t := range []string{tag, BaseTag} {
			if svc, ok := strings.CutSuffix(o.GetName(), "-"+t); ok && t != "" {
				add(svc)
			}
		}
	case !isUnstructured:
	case u.GetKind() == VirtualServiceGVK.Kind || u.GetKind() == DestinationRuleGVK.Kind:
		if svc, ok := strings.CutPrefix(u.GetName(), MeshObjectName("")); ok {
			add(svc)
		}
		for _, h := range IstioObjectHosts(u) {
			add(IstioHostService(h, u.GetNamespace()))
		}
	case u.GetKind() == HTTPRouteGVK.Kind:
		for _, svc := range HTTPRouteParentServices(u) {
			add(svc)
		}
	}
	return out
}

// isServiceObject reports whether o is a Service, typed or unstructured.
func isServiceObject(o client.Object) bool {
	if _, ok := o.(*corev1.Service); ok {
		return true
	}
	u, ok := o.(*unstructured.Unstructured)
	return ok && u.GroupVersionKind().GroupKind() == ServiceGVK.GroupKind()
}
