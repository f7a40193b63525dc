package trafficrouting

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

func TestIstioObjects(t *testing.T) {
	lane := Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "X-MSE-Tag", Dialects: []Dialect{DialectIstio}, BaseLabels: true}
	tr := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lane", UID: types.UID("uid-1")}}
	meta := func(kind string) map[string]any {
		return map[string]any{
			"apiVersion": "networking.istio.io/v1",
			"kind":       kind,
			"metadata": map[string]any{
				"namespace": "shop",
				"name":      "lanes-b",
				"labels": map[string]any{
					"app.kubernetes.io/managed-by":   "kruise-lanes",
					"kruise-lanes.io/trafficrouting": "lane",
					"kruise-lanes.io/service":        "b",
				},
				"ownerReferences": []any{map[string]any{
					"apiVersion": "rollouts.kruise.io/v1alpha1",
					"kind":       "TrafficRouting",
					"name":       "lane",
					"uid":        "uid-1",
					"controller": true,
				}},
			},
		}
	}
	dr := meta("DestinationRule")
	dr["spec"] = map[string]any{
		"host": "b",
		"subsets": []any{
			map[string]any{"name": "base", "labels": map[string]any{"istio.service.tag": "base"}},
			map[string]any{"name": "gray", "labels": map[string]any{"istio.service.tag": "gray"}},
		},
	}
	vs := func(routes ...any) map[string]any {
		v := meta("VirtualService")
		v["spec"] = map[string]any{"hosts": []any{"b"}, "http": routes}
		return v
	}
	laneRoute := map[string]any{
		"name":  "lane-gray",
		"match": []any{map[string]any{"headers": map[string]any{"x-mse-tag": map[string]any{"exact": "gray"}}}},
		"route": []any{map[string]any{"destination": map[string]any{"host": "b", "subset": "gray"}}},
	}
	toBase := map[string]any{"name": "base", "route": []any{map[string]any{"destination": map[string]any{"host": "b", "subset": "base"}}}}
	toService := map[string]any{"name": "base", "route": []any{map[string]any{"destination": map[string]any{"host": "b"}}}}

	tests := map[string]struct {
		hop  Hop
		want []map[string]any
	}{
		"lane pods Ready: the lane header goes to the lane subset, the rest to base": {
			hop:  Hop{Service: "b", LaneReady: true, BaseReady: true},
			want: []map[string]any{dr, vs(laneRoute, toBase)},
		},
		"no Ready lane pod: no lane route, the lane falls back to base": {
			hop:  Hop{Service: "b", BaseReady: true},
			want: []map[string]any{dr, vs(toBase)},
		},
		"no Ready base pod (last batch): the rest goes to the Service as a whole": {
			hop:  Hop{Service: "b", LaneReady: true},
			want: []map[string]any{dr, vs(laneRoute, toService)},
		},
		"nothing Ready: the Service as a whole": {
			hop:  Hop{Service: "b"},
			want: []map[string]any{dr, vs(toService)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []map[string]any
			for _, u := range IstioObjects(lane, LaneOwner(tr), tc.hop) {
				got = append(got, u.Object)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("IstioObjects() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIstioHostOf(t *testing.T) {
	tests := map[string]bool{
		"b":                         true,
		"B":                         true,
		"b.shop":                    true,
		"b.shop.svc":                true,
		"b.shop.svc.cluster.local":  true,
		"b.shop.svc.corp.example.":  true,
		"b.other":                   false,
		"b.other.svc.cluster.local": false,
		"bb":                        false,
		"*.shop.svc.cluster.local":  false,
		"c":                         false,
	}
	for host, want := range tests {
		if got := IstioHostOf(host, "b", "shop"); got != want {
			t.Errorf("IstioHostOf(%q, b, shop) = %v, want %v", host, got, want)
		}
	}
}

func TestServiceSelects(t *testing.T) {
	pod := map[string]string{"app": "b", "version": "v1"}
	tests := map[string]struct {
		selector map[string]string
		want     bool
	}{
		"subset of the pod labels": {selector: map[string]string{"app": "b"}, want: true},
		"another app":              {selector: map[string]string{"app": "c"}, want: false},
		"a key the pod lacks":      {selector: map[string]string{"app": "b", "tier": "x"}, want: false},
		"no selector":              {selector: nil, want: false},
	}
	for name, tc := range tests {
		if got := ServiceSelects(tc.selector, pod); got != tc.want {
			t.Errorf("%s: ServiceSelects() = %v, want %v", name, got, tc.want)
		}
	}
}

func TestIstioObjectHosts(t *testing.T) {
	dr := &unstructured.Unstructured{Object: map[string]any{"kind": "DestinationRule", "spec": map[string]any{"host": "b.shop"}}}
	vs := &unstructured.Unstructured{Object: map[string]any{"kind": "VirtualService", "spec": map[string]any{"hosts": []any{"b", "c"}}}}
	if diff := cmp.Diff([]string{"b.shop"}, IstioObjectHosts(dr)); diff != "" {
		t.Errorf("DestinationRule hosts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b", "c"}, IstioObjectHosts(vs)); diff != "" {
		t.Errorf("VirtualService hosts (-want +got):\n%s", diff)
	}
}
