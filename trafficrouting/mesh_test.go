package trafficrouting

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	"k8s.io/utils/ptr"
)

func withEntry(tr *rolloutsv1alpha1.TrafficRouting, ref rolloutsv1alpha1.TrafficRoutingRef) *rolloutsv1alpha1.TrafficRouting {
	tr.Spec.ObjectRef = []rolloutsv1alpha1.TrafficRoutingRef{ref}
	return tr
}

func TestMeshOf(t *testing.T) {
	vsEntry := rolloutsv1alpha1.TrafficRoutingRef{Service: "a", CustomNetworkRefs: []rolloutsv1alpha1.CustomNetworkRef{{APIVersion: "networking.istio.io/v1beta1", Kind: "VirtualService", Name: "a"}}}
	tests := map[string]struct {
		tr      *rolloutsv1alpha1.TrafficRouting
		want    Mesh
		wantErr string
	}{
		"mse ingress entry: labels only": {
			tr:   withEntry(trafficRouting(nil), rolloutsv1alpha1.TrafficRoutingRef{Service: "a", Ingress: &rolloutsv1alpha1.IngressTrafficRouting{ClassType: "mse", Name: "a"}}),
			want: MeshNone,
		},
		"higress ingress entry: labels only": {
			tr:   withEntry(trafficRouting(nil), rolloutsv1alpha1.TrafficRoutingRef{Service: "a", Ingress: &rolloutsv1alpha1.IngressTrafficRouting{ClassType: "higress", Name: "a"}}),
			want: MeshNone,
		},
		"nginx ingress entry: no mesh is guessed": {
			tr:   withEntry(trafficRouting(nil), rolloutsv1alpha1.TrafficRoutingRef{Service: "a", Ingress: &rolloutsv1alpha1.IngressTrafficRouting{Name: "a"}}),
			want: MeshNone,
		},
		"no entry": {tr: trafficRouting(nil), want: MeshNone},
		"istio VirtualService entry": {
			tr:   withEntry(trafficRouting(nil), vsEntry),
			want: MeshIstio,
		},
		"Gateway API HTTPRoute entry": {
			tr:   withEntry(trafficRouting(nil), rolloutsv1alpha1.TrafficRoutingRef{Service: "a", Gateway: &rolloutsv1alpha1.GatewayTrafficRouting{HTTPRouteName: ptr.To("a")}}),
			want: MeshGatewayAPI,
		},
		"HTTPRoute as a custom ref": {
			tr:   withEntry(trafficRouting(nil), rolloutsv1alpha1.TrafficRoutingRef{Service: "a", CustomNetworkRefs: []rolloutsv1alpha1.CustomNetworkRef{{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute", Name: "a"}}}),
			want: MeshGatewayAPI,
		},
		"annotation wins over the entry": {
			tr:   withEntry(trafficRouting(map[string]string{AnnotationMesh: "none"}), vsEntry),
			want: MeshNone,
		},
		"annotation istio on an mse entry": {
			tr:   withEntry(trafficRouting(map[string]string{AnnotationMesh: "istio"}), rolloutsv1alpha1.TrafficRoutingRef{Service: "a", Ingress: &rolloutsv1alpha1.IngressTrafficRouting{ClassType: "mse", Name: "a"}}),
			want: MeshIstio,
		},
		"annotation gateway-api": {tr: trafficRouting(map[string]string{AnnotationMesh: "gateway-api"}), want: MeshGatewayAPI},
		"unknown annotation": {
			tr:      trafficRouting(map[string]string{AnnotationMesh: "linkerd"}),
			wantErr: `unknown mesh "linkerd"; known: none, istio, gateway-api`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := MeshOf(tc.tr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("MeshOf() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("MeshOf() = %q, want %q", got, tc.want)
			}
		})
	}
}

// An istio lane always labels base pods and carries the istio dialect, since its
// DestinationRule subsets select by that label.
func TestResolveIstioLaneImpliesBaseLabels(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		wantCanary  map[string]string
		wantStable  map[string]string
	}{
		"default dialects gain istio and base labels": {
			annotations: map[string]string{AnnotationMesh: "istio"},
			wantCanary:  map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray", "istio.service.tag": "gray"},
			wantStable:  map[string]string{"istio.service.tag": "base"},
		},
		"base labels cannot be turned off for istio": {
			annotations: map[string]string{AnnotationMesh: "istio", AnnotationDialects: "istio", AnnotationBaseLabels: "false"},
			wantCanary:  map[string]string{"istio.service.tag": "gray"},
			wantStable:  map[string]string{"istio.service.tag": "base"},
		},
		"mesh none leaves the lane alone": {
			annotations: map[string]string{AnnotationMesh: "none"},
			wantCanary:  map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"},
			wantStable:  map[string]string{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lane, err := Resolve(trafficRouting(tc.annotations, header("x-mse-tag", "gray")), DefaultDefaults())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantCanary, lane.CanaryLabels()); diff != "" {
				t.Errorf("canary labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantStable, lane.StableLabels()); diff != "" {
				t.Errorf("stable labels (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Resolve(trafficRouting(map[string]string{AnnotationMesh: "consul"}, header("x-mse-tag", "gray")), DefaultDefaults()); err == nil ||
		!strings.Contains(err.Error(), `metadata.annotations[kruise-lanes.io/mesh]: Invalid value: "consul": unknown mesh "consul"`) {
		t.Errorf("Resolve() with an unknown mesh: error = %v", err)
	}
}
