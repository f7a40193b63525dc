//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The examples under examples/ are read from disk and applied as they are, so that an example
// that stops working fails here. Each test checks what the example's README promises.

// applyExample applies every *.yaml file of examples/<dir> (in name order) into ns and returns
// the objects as read from disk.
func applyExample(t *testing.T, ns, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := framework.ReadYAMLFiles(filepath.Join(cluster.RepoRoot, "examples", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Apply fills in the namespace and resource version: keep the objects read from disk intact.
	apply := make([]client.Object, len(objs))
	for i, o := range objs {
		apply[i] = o.DeepCopy()
	}
	if err := framework.Apply(t.Context(), cluster.Client, ns, apply...); err != nil {
		t.Fatalf("applying examples/%s: %v", dir, err)
	}
	return objs
}

// waitExampleHealthy waits until the example's lane and every member Rollout are Healthy.
func waitExampleHealthy(t *testing.T, ns, lane string, rollouts ...string) {
	t.Helper()
	ctx := t.Context()
	for _, name := range rollouts {
		if _, err := framework.WaitForRollout(ctx, cluster.Client, client.ObjectKey{Namespace: ns, Name: name}, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, cluster.Client, client.ObjectKey{Namespace: ns, Name: lane}, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseHealthy); err != nil {
		t.Fatal(err)
	}
}

// waitIngressAnnotations waits until the Ingress exists with every annotation of want, and returns it.
func waitIngressAnnotations(t *testing.T, ns, name string, want map[string]string) *networkingv1.Ingress {
	t.Helper()
	ing := &networkingv1.Ingress{}
	err := framework.WaitFor(t.Context(), stepTimeout, "ingress "+name+" with the lane's annotations", func(ctx context.Context) (bool, error) {
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ing); err != nil {
			return false, err
		}
		for k, v := range want {
			if got, ok := ing.Annotations[k]; !ok || got != v {
				return false, framework.Pending("annotation %s = %q (present %t), want %q; annotations %v", k, got, ok, v, ing.Annotations)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ing
}

// waitIngressGone waits until the Ingress no longer exists.
func waitIngressGone(t *testing.T, ns, name string) {
	t.Helper()
	err := framework.WaitFor(t.Context(), stepTimeout, "ingress "+name+" to be removed", func(ctx context.Context) (bool, error) {
		err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &networkingv1.Ingress{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return false, framework.Pending("still present")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestExampleDomainEntry applies examples/domain-entry (seed 001) with our mse provider: while A
// and C are released, the canary host's Ingress gets a canary Ingress that sends all of
// www.example.com into the lane with x-mse-tag: gray, the base host's Ingress is not touched, and
// approving A and C closes the lane.
func TestExampleDomainEntry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := cluster.Client
	ns := cluster.Namespace(t)
	const (
		baseIngress   = "spring-cloud-a"
		canaryIngress = "spring-cloud-a-gray-canary"
	)
	image := func(svc, version string) string { return "example.com/" + svc + ":" + version }
	rolloutOf := map[string]string{"spring-cloud-a": "rollout-a", "spring-cloud-b": "rollout-b", "spring-cloud-c": "rollout-c"}
	released := []string{"spring-cloud-a", "spring-cloud-c"}

	installMSEProvider(t)
	applyExample(t, ns, "domain-entry")
	waitExampleHealthy(t, ns, "gray-domain", "rollout-a", "rollout-b", "rollout-c")
	base := &networkingv1.Ingress{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: baseIngress}, base); err != nil {
		t.Fatal(err)
	}
	baseUntouched := func(when string) {
		t.Helper()
		now := &networkingv1.Ingress{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: baseIngress}, now); err != nil {
			t.Fatal(err)
		}
		if now.ResourceVersion != base.ResourceVersion {
			t.Errorf("%s: the base host's Ingress was changed (-before +after):\n%s", when, cmp.Diff(base, now))
		}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: baseIngress + "-canary"}, &networkingv1.Ingress{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: the base host has a canary Ingress %s-canary (get: %v)", when, baseIngress, err)
		}
	}

	for _, svc := range released {
		setImage(t, client.ObjectKey{Namespace: ns, Name: svc}, image(svc, "3.1.0"))
	}
	for _, svc := range released {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: rolloutOf[svc]}, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": svc}, stepTimeout,
			map[string]int{image(svc, "3.0.1"): 2, image(svc, "3.1.0"): 1}); err != nil {
			t.Fatal(err)
		}
		assertExtraWorkloadCanary(t, ns, svc, image(svc, "3.1.0"), map[string]string{"alicloud.service.tag": "gray"})
	}

	// The canary host: everything to the lane (weight 100), the lane header injected, the lane's
	// subset; no header condition.
	ing := waitIngressAnnotations(t, ns, canaryIngress, map[string]string{
		"nginx.ingress.kubernetes.io/canary":                      "true",
		"nginx.ingress.kubernetes.io/canary-weight":               "100",
		"mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag gray",
		"mse.ingress.kubernetes.io/service-subset":                "gray",
	})
	for k := range ing.Annotations {
		if strings.HasPrefix(k, "nginx.ingress.kubernetes.io/canary-by-") || strings.HasPrefix(k, "mse.ingress.kubernetes.io/canary-by-") {
			t.Errorf("canary Ingress of the canary host has a condition %s: %s; want all of its traffic", k, ing.Annotations[k])
		}
	}
	var hosts []string
	for _, r := range ing.Spec.Rules {
		hosts = append(hosts, r.Host)
	}
	if diff := cmp.Diff([]string{"www.example.com"}, hosts); diff != "" {
		t.Errorf("canary Ingress hosts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"spring-cloud-a"}, ingressBackends(ing)); diff != "" {
		t.Errorf("canary Ingress backends (-want +got):\n%s", diff)
	}
	baseUntouched("while the lane is open")

	for _, svc := range released {
		if err := framework.ApproveRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: rolloutOf[svc]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range released {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: rolloutOf[svc]}, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
			t.Fatal(err)
		}
	}
	waitIngressGone(t, ns, canaryIngress)
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, c, client.ObjectKey{Namespace: ns, Name: "gray-domain"}, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseHealthy); err != nil {
		t.Fatal(err)
	}
	baseUntouched("after the release")
}

// istioExampleRoutes reads the Istio objects of the lane of examples/istio (lane "canary", tag
// "canary"): for each member Service, whether its VirtualService has the lane route, and that it
// has its DestinationRule.
func istioExampleRoutes(ctx context.Context, ns string) (map[string]bool, error) {
	out := map[string]bool{}
	vss, err := laneObjectsOf(ctx, ns, "canary", "networking.istio.io/v1", "VirtualService")
	if err != nil {
		return nil, err
	}
	for i := range vss {
		out[vss[i].GetLabels()[trafficrouting.MeshServiceLabel]] = istioHasLaneTag(&vss[i], "canary")
	}
	drs, err := laneObjectsOf(ctx, ns, "canary", "networking.istio.io/v1", "DestinationRule")
	if err != nil {
		return nil, err
	}
	return out, sameServices(out, drs, 1, "DestinationRule")
}

// TestExampleIstio applies examples/istio (seed 004 on open-source Istio) with lanes-manager
// writing mesh routes, and follows the seed: release mocka, then mockb and mockc, approve mockb,
// then mocka and mockc. A member has a lane route exactly while its canary is Ready in the lane;
// the gateway's entry VirtualService gets Kruise's lane route to subset "canary" of mocka, which
// lanes-manager's DestinationRule defines; after the last approval no lane object is left and the
// entry VirtualService is as the example wrote it.
func TestExampleIstio(t *testing.T) {
	ctx := t.Context()
	c := cluster.Client
	cluster.StartLanesManager(t, "--mesh-routes=true")
	ns := cluster.Namespace(t)
	const (
		oldImage = "registry.cn-beijing.aliyuncs.com/aliacs-app-catalog/go-http-sample:1.0"
		newImage = "registry.cn-beijing.aliyuncs.com/aliacs-app-catalog/go-http-sample:2.0"
	)
	objs := applyExample(t, ns, "istio")
	var entrySpec any
	for _, o := range objs {
		if o.GetKind() == "VirtualService" && o.GetName() == "mock-entry" {
			entrySpec = o.Object["spec"]
		}
	}
	if entrySpec == nil {
		t.Fatal("examples/istio has no VirtualService mock-entry")
	}
	entrySpec, err := viaJSON(entrySpec)
	if err != nil {
		t.Fatal(err)
	}
	waitExampleHealthy(t, ns, "canary", "rollouts-mocka", "rollouts-mockb", "rollouts-mockc")
	routes := meshCase{mesh: "istio", routes: istioExampleRoutes}

	release := func(names ...string) {
		t.Helper()
		for _, name := range names {
			setImage(t, client.ObjectKey{Namespace: ns, Name: name}, newImage)
		}
		for _, name := range names {
			if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: "rollouts-" + name}, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
				t.Fatal(err)
			}
			if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": name}, stepTimeout, map[string]int{newImage: 1, oldImage: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	approve := func(names ...string) {
		t.Helper()
		for _, name := range names {
			key := client.ObjectKey{Namespace: ns, Name: "rollouts-" + name}
			if err := framework.ApproveRollout(ctx, c, key); err != nil {
				t.Fatal(err)
			}
			if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
				t.Fatal(err)
			}
		}
	}

	release("mocka")
	waitLaneRoutes(t, ns, "a lane route for mocka only", routes, map[string]bool{"mocka": true})
	for img, pods := range podsByImage(ctx, t, ns, "mocka") {
		want := trafficrouting.BaseTag
		if img == newImage {
			want = "canary"
		}
		for _, p := range pods {
			if got := p.Labels[trafficrouting.LabelIstio]; got != want {
				t.Errorf("pod %s (%s): %s=%q, want %q", p.Name, img, trafficrouting.LabelIstio, got, want)
			}
		}
	}
	assertEntryLaneRoute(t, ns)

	release("mockb", "mockc")
	waitLaneRoutes(t, ns, "lane routes for every member", routes, map[string]bool{"mocka": true, "mockb": true, "mockc": true})

	approve("mockb")
	waitLaneRoutes(t, ns, "mockb's routes gone after its approval", routes, map[string]bool{"mocka": true, "mockc": true})

	approve("mocka", "mockc")
	waitLaneRoutes(t, ns, "no lane object after the last approval", routes, map[string]bool{})
	err = framework.WaitFor(ctx, stepTimeout, "the entry VirtualService back as the example wrote it", func(ctx context.Context) (bool, error) {
		vs := &unstructured.Unstructured{}
		vs.SetAPIVersion("networking.istio.io/v1")
		vs.SetKind("VirtualService")
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mock-entry"}, vs); err != nil {
			return false, err
		}
		live, err := viaJSON(vs.Object["spec"])
		if err != nil {
			return false, err
		}
		if diff := cmp.Diff(entrySpec, live); diff != "" {
			return false, framework.Pending("spec differs (-example +live):\n%s", diff)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, c, client.ObjectKey{Namespace: ns, Name: "canary"}, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseHealthy); err != nil {
		t.Fatal(err)
	}
	events := &corev1.EventList{}
	if err := c.List(ctx, events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.HasPrefix(e.Reason, "Lane") && e.Type == corev1.EventTypeWarning {
			t.Errorf("unexpected warning %s: %s", e.Reason, e.Message)
		}
	}
}

// viaJSON returns v as encoding/json decodes it (numbers as float64), so that a value read from a
// YAML file and one read from the API server (numbers as int64) compare equal when they are.
func viaJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %v: %w", v, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", b, err)
	}
	return out, nil
}

// assertEntryLaneRoute checks the gateway hop of examples/istio: Kruise's VirtualService script
// has put first in the entry VirtualService a route that sends x-asm-prefer-tag: canary to subset
// "canary" of mocka and sets that header, ahead of the example's own route; and lanes-manager's
// DestinationRule for mocka defines subset "canary" as the pods labelled with the lane tag.
func assertEntryLaneRoute(t *testing.T, ns string) {
	t.Helper()
	wantLane := map[string]any{
		"match":   []any{map[string]any{"headers": map[string]any{"x-asm-prefer-tag": map[string]any{"exact": "canary"}}}},
		"headers": map[string]any{"request": map[string]any{"set": map[string]any{"x-asm-prefer-tag": "canary"}}},
		"route":   []any{map[string]any{"destination": map[string]any{"host": "mocka", "subset": "canary"}}},
	}
	err := framework.WaitFor(t.Context(), stepTimeout, "the lane route in the entry VirtualService", func(ctx context.Context) (bool, error) {
		vs := &unstructured.Unstructured{}
		vs.SetAPIVersion("networking.istio.io/v1")
		vs.SetKind("VirtualService")
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "mock-entry"}, vs); err != nil {
			return false, err
		}
		http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		if len(http) != 2 {
			return false, framework.Pending("%d http routes, want the lane route and the example's: %v", len(http), http)
		}
		if diff := cmp.Diff(wantLane, http[0]); diff != "" {
			return false, framework.Pending("first route (-want +got):\n%s", diff)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dr := &unstructured.Unstructured{}
	dr.SetAPIVersion("networking.istio.io/v1")
	dr.SetKind("DestinationRule")
	if err := cluster.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: trafficrouting.MeshObjectName("mocka")}, dr); err != nil {
		t.Fatal(err)
	}
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	want := map[string]any{"name": "canary", "labels": map[string]any{trafficrouting.LabelIstio: "canary"}}
	for _, s := range subsets {
		if cmp.Equal(want, s) {
			return
		}
	}
	t.Errorf("DestinationRule %s has no subset %v the entry route can use: %v", dr.GetName(), want, subsets)
}

// TestExampleGrayEnvPipeline runs examples/gray-env/pipeline.sh (seed 003) against the test
// cluster with kubectl and a kubectl-lanes built from this repository: the gray stage deploys A
// and C into the gray environment and waits until it serves, verify says it has no gateway,
// release takes them to prod and the gray environment is gone; a second gray stage is rolled back.
func TestExampleGrayEnvPipeline(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := cluster.Client
	ns := cluster.Namespace(t)
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("the gray-env pipeline runs kubectl, which is not on PATH: %v", err)
	}
	binDir := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, "kubectl-lanes"), "./cmd/kubectl-lanes")
	build.Dir = cluster.RepoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-lanes: %v\n%s", err, out)
	}
	script := filepath.Join(cluster.RepoRoot, "examples", "gray-env", "pipeline.sh")
	pipeline := func(stage string, env ...string) (string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "sh", script, stage)
		cmd.Env = append(os.Environ(),
			"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
			"KUBECONFIG="+cluster.Kubeconfig, "NAMESPACE="+ns,
			"POLL=500ms", "GRAY_TIMEOUT=2m", "RELEASE_TIMEOUT=3m")
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		code := 0
		var exitErr *exec.ExitError
		switch {
		case errors.As(err, &exitErr):
			code = exitErr.ExitCode()
		case err != nil:
			t.Fatalf("running pipeline.sh %s: %v", stage, err)
		}
		t.Logf("pipeline.sh %s %v -> exit %d\n%s", stage, env, code, out)
		return string(out), code
	}
	image := func(svc, version string) string { return "registry.example.com/gray-demo/" + svc + ":" + version }
	apps := []string{"spring-cloud-a", "spring-cloud-b", "spring-cloud-c"}
	released := []string{"spring-cloud-a", "spring-cloud-c"}

	installMSEProvider(t)
	applyExample(t, ns, "gray-env")
	waitExampleHealthy(t, ns, "gray", apps...)

	if _, code := pipeline(""); code != 64 {
		t.Errorf("pipeline.sh without a stage: exit %d, want 64 (usage)", code)
	}

	out, code := pipeline("gray", "VERSION=1.1.0")
	wantExit(t, code, 0, "pipeline.sh gray")
	if want := "spring-cloud-a[gray] -> spring-cloud-b[base] -> spring-cloud-c[gray]"; !strings.Contains(out, want) {
		t.Errorf("the gray stage's trace does not show %q", want)
	}
	for _, svc := range released {
		assertExtraWorkloadCanary(t, ns, svc, image(svc, "1.1.0"), map[string]string{"alicloud.service.tag": "gray"})
	}
	if n := deploymentsFor(t, ns, "spring-cloud-b"); n != 1 {
		t.Errorf("B has %d Deployments in the gray stage, want only its own", n)
	}
	waitIngressAnnotations(t, ns, "spring-cloud-a-canary", map[string]string{
		"nginx.ingress.kubernetes.io/canary-by-header":            "group",
		"nginx.ingress.kubernetes.io/canary-by-header-value":      "gray",
		"mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag gray",
		"mse.ingress.kubernetes.io/service-subset":                "gray",
	})

	out, code = pipeline("verify")
	wantExit(t, code, 0, "pipeline.sh verify without a gateway")
	if !strings.Contains(out, "GATEWAY is not set") {
		t.Errorf("verify without GATEWAY does not say that it sent nothing")
	}

	_, code = pipeline("release")
	wantExit(t, code, 0, "pipeline.sh release")
	for _, svc := range apps {
		version := "1.0.0"
		if svc != "spring-cloud-b" {
			version = "1.1.0"
		}
		if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": svc}, stepTimeout, map[string]int{image(svc, version): 2}); err != nil {
			t.Fatal(err)
		}
		waitOwnDeploymentOnly(t, ns, svc, "the gray environment of "+svc+" removed after the release")
	}
	waitIngressGone(t, ns, "spring-cloud-a-canary")

	// A second release of A into the gray environment, given up.
	_, code = pipeline("gray", "VERSION=1.2.0", "SERVICES=spring-cloud-a")
	wantExit(t, code, 0, "pipeline.sh gray (second release)")
	_, code = pipeline("rollback")
	wantExit(t, code, 0, "pipeline.sh rollback")
	if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": "spring-cloud-a"}, stepTimeout, map[string]int{image("spring-cloud-a", "1.1.0"): 2}); err != nil {
		t.Fatal(err)
	}
	waitOwnDeploymentOnly(t, ns, "spring-cloud-a", "A's gray environment removed after the rollback")
}

// waitOwnDeploymentOnly waits until app's own Deployment is the only one whose pods carry app=app
// (Kruise's canary Deployment, the gray environment, is gone).
func waitOwnDeploymentOnly(t *testing.T, ns, app, what string) {
	t.Helper()
	err := framework.WaitFor(t.Context(), stepTimeout, what, func(context.Context) (bool, error) {
		if n := deploymentsFor(t, ns, app); n != 1 {
			return false, framework.Pending("%d Deployments select app=%s", n, app)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
