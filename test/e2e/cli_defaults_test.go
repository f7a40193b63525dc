//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// TestCLIUsesManagerDefaults: lanes-manager runs with --lane-header=x-lane and installs its own mse
// provider; a lane that injects only x-lane: blue is one lane for all of them: the webhook labels
// the canary pods blue, Kruise's run of the installed script names the MSE subset blue, and
// kubectl lanes status, reading the defaults the manager published, counts the Ready lane pods
// and says where its defaults came from. With the built-in lane header given as a flag, the
// same lane cannot be resolved, which is what status did before it read the manager's defaults.
// Not parallel: it replaces the mse provider key in Kruise's ConfigMap and points the webhook at
// its own manager.
func TestCLIUsesManagerDefaults(t *testing.T) {
	ctx := t.Context()
	ns := cluster.Namespace(t)
	m := newLaneMember(deployment(ns, "d", "example.com/d:v1", 3), 3, 1, 2)
	m.create(t, func(tr *rolloutsv1alpha1.TrafficRouting) {
		tr.Spec.Strategy.RequestHeaderModifier.Set = []gatewayv1beta1.HTTPHeader{{Name: "x-lane", Value: "blue"}}
	})
	// After create: the fixture installs the suite's mse script, which the manager then replaces.
	cluster.StartLanesManager(t, "--lane-header=x-lane", "--providers=mse", "--overwrite-providers=true")
	err := framework.WaitFor(ctx, stepTimeout, "the manager's mse provider (default lane header x-lane) in Kruise's ConfigMap and its published defaults", func(ctx context.Context) (bool, error) {
		kruise := &corev1.ConfigMap{}
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: "kruise-rollout", Name: "kruise-rollout-configuration"}, kruise); err != nil {
			return false, err
		}
		if !strings.Contains(kruise.Data["lua.traffic.routing.ingress.mse"], `DEFAULT_LANE_HEADER = "x-lane"`) {
			return false, framework.Pending("the mse key does not default to x-lane yet")
		}
		published := &corev1.ConfigMap{}
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: framework.LanesNamespace, Name: trafficrouting.DefaultsConfigMapName}, published); err != nil {
			return false, framework.Pending("no defaults ConfigMap yet: %v", err)
		}
		return published.Data[trafficrouting.DefaultsKeyLaneHeader] == "x-lane", nil
	})
	if err != nil {
		t.Fatal(err)
	}

	pods := m.release(t)
	for _, p := range pods[m.newImage] {
		if got := p.Labels[trafficrouting.LabelMSE]; got != "blue" {
			t.Errorf("canary pod %s has %s=%q, want blue", p.Name, trafficrouting.LabelMSE, got)
		}
	}
	// The installed script names the MSE subset by the same lane header: blue.
	waitIngressAnnotations(t, ns, "d-canary", map[string]string{
		trafficrouting.AnnotationServiceSubset:                    "blue",
		"mse.ingress.kubernetes.io/request-header-control-update": "x-lane blue",
	})

	out, errOut, code := lanes(t, ns, "status", "lane", "-o", "json")
	wantExit(t, code, 0, "status")
	if !strings.Contains(errOut, "defaults: from ConfigMap lanes-system/kruise-lanes-defaults: lane header x-lane") {
		t.Errorf("status does not say it used the manager's defaults: stderr %q", errOut)
	}
	var s struct {
		Tag     string `json:"tag"`
		Problem string `json:"problem"`
		Members []struct {
			LanePods int `json:"lanePods"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if s.Tag != "blue" || s.Problem != "" || len(s.Members) != 1 || s.Members[0].LanePods != len(pods[m.newImage]) {
		t.Errorf("status: tag %q problem %q members %+v, want tag blue, no problem and %d Ready lane pods", s.Tag, s.Problem, s.Members, len(pods[m.newImage]))
	}

	out, errOut, code = lanes(t, ns, "status", "lane", "--lane-header=x-mse-tag")
	wantExit(t, code, 0, "status with the built-in lane header")
	if !strings.Contains(errOut, "defaults: from flags (--lane-header), otherwise from ConfigMap lanes-system/kruise-lanes-defaults") {
		t.Errorf("status --lane-header does not say the flag won: stderr %q", errOut)
	}
	if !strings.Contains(out, "Problem: ") || !strings.Contains(out, "the lane tag cannot be determined") {
		t.Errorf("status with --lane-header=x-mse-tag resolved the lane:\n%s", out)
	}
	m.complete(t)
	installMSEProvider(t) // the suite's script back for the tests that follow
}
