package trafficrouting

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openkruise/rollouts/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

func trafficRouting(annotations map[string]string, set ...gatewayv1beta1.HTTPHeader) *v1alpha1.TrafficRouting {
	tr := &v1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "mse-traffic", Annotations: annotations}}
	if len(set) > 0 {
		tr.Spec.Strategy.RequestHeaderModifier = &gatewayv1beta1.HTTPHeaderFilter{Set: set}
	}
	return tr
}

func header(name, value string) gatewayv1beta1.HTTPHeader {
	return gatewayv1beta1.HTTPHeader{Name: gatewayv1beta1.HTTPHeaderName(name), Value: value}
}

func TestResolve(t *testing.T) {
	tests := map[string]struct {
		tr         *v1alpha1.TrafficRouting
		wantCanary map[string]string
		wantStable map[string]string
		wantErr    string
	}{
		"seed 002: tag from the lane header, default dialects": {
			tr:         trafficRouting(nil, header("X-MSE-Tag", "gray")),
			wantCanary: map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"},
			wantStable: map[string]string{},
		},
		"tag annotation (the lane header is not injected) and every dialect with base labels": {
			tr: trafficRouting(map[string]string{AnnotationTag: "blue", AnnotationDialects: "mse, opensergo,asm,istio,lanes", AnnotationBaseLabels: "true"},
				header("x-env", "gray")),
			wantCanary: map[string]string{"alicloud.service.tag": "blue", "opensergo.io/canary-blue": "blue", "ASM_TRAFFIC_TAG": "blue", "istio.service.tag": "blue", "kruise-lanes.io/lane": "blue"},
			wantStable: map[string]string{"ASM_TRAFFIC_TAG": "base", "istio.service.tag": "base", "kruise-lanes.io/lane": "base"},
		},
		"custom lane header": {
			tr:         trafficRouting(map[string]string{AnnotationLaneHeader: "x-lane", AnnotationDialects: "asm"}, header("x-mse-tag", "gray"), header("x-lane", "s1")),
			wantCanary: map[string]string{"ASM_TRAFFIC_TAG": "s1"},
			wantStable: map[string]string{},
		},
		"tag annotation agreeing with the injected lane header": {
			tr:         trafficRouting(map[string]string{AnnotationTag: "blue"}, header("X-Mse-Tag", "blue")),
			wantCanary: map[string]string{"alicloud.service.tag": "blue", "opensergo.io/canary-blue": "blue"},
			wantStable: map[string]string{},
		},
		"tag annotation contradicting the injected lane header": {
			tr:      trafficRouting(map[string]string{AnnotationTag: "blue"}, header("x-mse-tag", "gray")),
			wantErr: `metadata.annotations[kruise-lanes.io/tag]: Invalid value: "blue": contradicts spec.strategy.requestHeaderModifier.set, which sets the lane header x-mse-tag to "gray"`,
		},
		"istio lane: a tag with a dot is no subset name": {
			tr:      trafficRouting(map[string]string{AnnotationMesh: "istio"}, header("x-mse-tag", "v1.0")),
			wantErr: "an istio lane's tag names its DestinationRule subset, which must be a DNS-1123 label",
		},
		"istio lane: an upper-case tag is no subset name": {
			tr:      trafficRouting(map[string]string{AnnotationMesh: "istio", AnnotationTag: "Gray"}),
			wantErr: "an istio lane's tag names its DestinationRule subset, which must be a DNS-1123 label",
		},
		"istio lane: a DNS-1123 tag": {
			tr:         trafficRouting(map[string]string{AnnotationMesh: "istio"}, header("x-mse-tag", "v1-0")),
			wantCanary: map[string]string{"alicloud.service.tag": "v1-0", "opensergo.io/canary-v1-0": "v1-0", "istio.service.tag": "v1-0"},
			wantStable: map[string]string{"istio.service.tag": "base"},
		},
		"gateway-api lane: a dotted tag is left to the route renderer, which checks Service names": {
			tr:         trafficRouting(map[string]string{AnnotationMesh: "gateway-api", AnnotationDialects: "lanes"}, header("x-mse-tag", "v1.0")),
			wantCanary: map[string]string{"kruise-lanes.io/lane": "v1.0"},
			wantStable: map[string]string{"kruise-lanes.io/lane": "base"},
		},
		"no tag anywhere": {
			tr:      trafficRouting(nil),
			wantErr: "the lane tag cannot be determined: set kruise-lanes.io/tag, or set header x-mse-tag in spec.strategy.requestHeaderModifier.set",
		},
		"lane header set under another name only": {
			tr:      trafficRouting(nil, header("x-env", "gray")),
			wantErr: "the lane tag cannot be determined",
		},
		"tag is not a label value": {
			tr:      trafficRouting(map[string]string{AnnotationTag: "gray lane"}),
			wantErr: "the lane tag must be a valid label value",
		},
		"reserved base tag": {
			tr:      trafficRouting(nil, header("x-mse-tag", "base")),
			wantErr: `the tag "base" is reserved`,
		},
		"unknown dialect": {
			tr:      trafficRouting(map[string]string{AnnotationDialects: "mse,nacos"}, header("x-mse-tag", "gray")),
			wantErr: `unknown label dialect "nacos"`,
		},
		"base-labels not a boolean": {
			tr:      trafficRouting(map[string]string{AnnotationBaseLabels: "yes please"}, header("x-mse-tag", "gray")),
			wantErr: "must be true or false",
		},
		"invalid lane header": {
			tr:      trafficRouting(map[string]string{AnnotationLaneHeader: "x lane"}, header("x-mse-tag", "gray")),
			wantErr: "the lane header is not a valid HTTP header name",
		},
		"opensergo key too long for the tag": {
			tr:      trafficRouting(nil, header("x-mse-tag", strings.Repeat("g", 60))),
			wantErr: "dialect opensergo would need label key",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lane, err := Resolve(tc.tr, DefaultDefaults())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "lane shop/mse-traffic is misconfigured") {
					t.Errorf("error %q does not name the lane", err)
				}
				return
			}
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
}

func TestIsLaneLabel(t *testing.T) {
	for key, want := range map[string]bool{
		"alicloud.service.tag": true, "opensergo.io/canary-gray": true, "ASM_TRAFFIC_TAG": true,
		"istio.service.tag": true, "kruise-lanes.io/lane": true, "app": false, "pod-template-hash": false,
	} {
		if got := IsLaneLabel(key); got != want {
			t.Errorf("IsLaneLabel(%q) = %v, want %v", key, got, want)
		}
	}
}
