//go:build e2e

package bench

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// meshRoutes says where lanes-manager keeps a member's lane route on one mesh, as docs/mesh.md
// describes it; the benchmark reads only that, never the reconciler's types.
type meshRoutes struct {
	// mesh is the lane's kruise-lanes.io/mesh annotation.
	mesh string
	// dialect is the lane's kruise-lanes.io/dialects annotation, and podLabel the label key
	// lanes-manager's webhook stamps <tag> (lane pods) or base (stable pods) under for this mesh.
	dialect, podLabel string
	// controllers are the names lanes-manager's route controller has had, any of which its metrics
	// may report (mesh-istio before Gateway API routes, mesh-routes since).
	controllers []string
	// routes is the resource of the object that holds a member's lane route.
	routes schema.GroupVersionResource
	// service names the member Service such an object routes.
	service func(*unstructured.Unstructured) string
	// hasLaneRoute reports whether the object sends the lane's requests to the member's canary.
	hasLaneRoute func(*unstructured.Unstructured) bool
}

// istioRoutes: a member's VirtualService lanes-<service>, labelled with the Service, has an http
// route named lane-<tag> while the member has Ready lane pods.
func istioRoutes() meshRoutes {
	return meshRoutes{
		mesh:        "istio",
		dialect:     "istio",
		podLabel:    trafficrouting.LabelIstio,
		controllers: []string{"mesh-routes", "mesh-istio"},
		routes:      schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
		service:     func(u *unstructured.Unstructured) string { return u.GetLabels()[trafficrouting.MeshServiceLabel] },
		hasLaneRoute: func(u *unstructured.Unstructured) bool {
			routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
			for _, r := range routes {
				if m, ok := r.(map[string]any); ok && m["name"] == "lane-"+laneTag {
					return true
				}
			}
			return false
		},
	}
}

// gatewayRoutes: a member's HTTPRoute lanes-<service> (GAMMA, parent the member Service),
// labelled with the Service, has a rule whose backend is the lane Service <service>-<tag> while
// the member has Ready lane pods.
func gatewayRoutes() meshRoutes {
	service := func(u *unstructured.Unstructured) string { return u.GetLabels()[trafficrouting.MeshServiceLabel] }
	return meshRoutes{
		mesh:        "gateway-api",
		dialect:     "lanes",
		podLabel:    trafficrouting.LabelLanes,
		controllers: []string{"mesh-routes"},
		routes:      schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
		service:     service,
		hasLaneRoute: func(u *unstructured.Unstructured) bool {
			rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				refs, _, _ := unstructured.NestedSlice(rule, "backendRefs")
				for _, ref := range refs {
					if m, ok := ref.(map[string]any); ok && m["name"] == service(u)+"-"+laneTag {
						return true
					}
				}
			}
			return false
		},
	}
}
