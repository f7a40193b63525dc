//go:build e2e

package e2e

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestMeshCRDsServed checks that the Gateway API and Istio CRDs the harness installs for the
// east-west lane scenarios are served: an HTTPRoute and a VirtualService can be created.
func TestMeshCRDsServed(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	for name, obj := range map[string]map[string]any{
		"HTTPRoute": {
			"apiVersion": "gateway.networking.k8s.io/v1",
			"kind":       "HTTPRoute",
			"metadata":   map[string]any{"name": "probe"},
			"spec": map[string]any{
				"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "probe"}},
				"rules":      []any{map[string]any{"backendRefs": []any{map[string]any{"name": "probe", "port": int64(80)}}}},
			},
		},
		"VirtualService": {
			"apiVersion": "networking.istio.io/v1",
			"kind":       "VirtualService",
			"metadata":   map[string]any{"name": "probe"},
			"spec": map[string]any{
				"hosts": []any{"probe"},
				"http":  []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "probe"}}}}},
			},
		},
	} {
		u := &unstructured.Unstructured{Object: obj}
		u.SetNamespace(ns)
		if err := cluster.Client.Create(t.Context(), u); err != nil {
			t.Errorf("creating a %s: %v", name, err)
			continue
		}
		if err := cluster.Client.Get(t.Context(), client.ObjectKeyFromObject(u), u); err != nil {
			t.Errorf("reading the %s back: %v", name, err)
		}
	}
}
