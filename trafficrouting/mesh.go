package trafficrouting

import (
	"fmt"
	"strings"

	"github.com/openkruise/rollouts/api/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
func MeshOf(tr *v1alpha1.TrafficRouting) (Mesh, error) {
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
// subsets by the istio dialect's label, and Istio cannot select "pods without the lane label", so
// an istio lane always carries the istio dialect and labels its stable pods "base".
func withMesh(lane Lane, m Mesh) Lane {
	if m != MeshIstio {
		return lane
	}
	lane.BaseLabels = true
	for _, d := range lane.Dialects {
		if d == DialectIstio {
			return lane
		}
	}
	lane.Dialects = append(append([]Dialect(nil), lane.Dialects...), DialectIstio)
	return lane
}
