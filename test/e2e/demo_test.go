//go:build e2e

package e2e

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/test/demo/lanedemo"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// TestDemoLifecycle plays `make demo` (test/demo/lanedemo on examples/mse) on the suite's cluster
// with lanes-manager, so the demo and its example cannot rot: the trace at each phase (A and C in
// the lane, B on base), the canary Ingress's lane annotations while A and C are released, the
// approval to completion, and the rollback of the second release, checked in what the demo printed
// and again in the cluster. It starts lanes-manager, so it is not parallel.
func TestDemoLifecycle(t *testing.T) {
	cluster.StartLanesManager(t, "--mesh-routes=true")
	ns := cluster.Namespace(t)
	var out bytes.Buffer
	probes, stop, err := lanedemo.StartDataPlanes(t.Context(), cluster, ns, &out)
	t.Cleanup(stop)
	if err != nil {
		t.Fatal(err)
	}
	res, err := lanedemo.Run(t.Context(), lanedemo.Config{
		Client:      cluster.Client,
		Kubeconfig:  cluster.Kubeconfig,
		Namespace:   ns,
		ExamplesDir: filepath.Join(cluster.RepoRoot, "examples", "mse"),
		AppFile:     filepath.Join(cluster.RepoRoot, "examples", "lane-demo", "chain.yaml"),
		Mesh:        "istio",
		Probes:      probes,
		Out:         &out,
		Timeout:     stepTimeout,
	})
	t.Logf("demo transcript:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	transcript := out.String()

	const (
		closed = "spring-cloud-a[base] -> spring-cloud-b[base] -> spring-cloud-c[base]"
		open   = "spring-cloud-a[gray] -> spring-cloud-b[base] -> spring-cloud-c[gray]"
	)
	for phase, got := range map[string]lanedemo.Snapshot{
		"deployed": res.Deployed, "released": res.Released, "approved": res.Approved,
		"released again": res.Rereleased, "rolled back": res.RolledBack,
	} {
		want, canary := closed, false
		if phase == "released" || phase == "released again" {
			want, canary = open, true
		}
		if got.Trace != want {
			t.Errorf("%s: trace %q, want %q", phase, got.Trace, want)
		}
		if !strings.Contains(transcript, "    "+want+"\n") {
			t.Errorf("%s: the transcript does not show the trace %q", phase, want)
		}
		// Real answers: the call from inside the mesh gets exactly the lane; through Traefik, a
		// request with the lane header keeps it from B on (Traefik picks A's pod from the whole
		// Service), and a request without it stays on base after A.
		mesh, tagged, plain := demoAnswers(t, phase, got.Answers)
		if want := demoMeshAnswer[phase]; len(mesh) != 1 || mesh[0] != want {
			t.Errorf("%s: the mesh call answered %q, want %q", phase, mesh, want)
		}
		_, afterA, ok := strings.Cut(demoMeshAnswer[phase], " -> ")
		if !ok {
			t.Fatalf("%s: the expected mesh answer %q has no hop after A", phase, demoMeshAnswer[phase])
		}
		tail := " -> " + afterA
		for _, a := range tagged {
			if !strings.HasSuffix(a, tail) {
				t.Errorf("%s: curl with x-mse-tag answered %q, want it to end %q", phase, a, tail)
			}
		}
		for _, a := range plain {
			if strings.Contains(a, "[gray]") && !strings.HasPrefix(a, "spring-cloud-a[gray]") {
				t.Errorf("%s: curl without a header answered %q: only A (picked by Traefik) may be gray", phase, a)
			}
		}
		for _, a := range append(append(mesh, tagged...), plain...) {
			if !strings.Contains(transcript, "    "+a+"\n") {
				t.Errorf("%s: the transcript does not show the answer %q", phase, a)
			}
		}
		if canary != (got.CanaryAnnotations != nil) {
			t.Errorf("%s: canary Ingress annotations %v, want a canary Ingress: %t", phase, got.CanaryAnnotations, canary)
		}
		if !canary {
			continue
		}
		for k, v := range map[string]string{
			"nginx.ingress.kubernetes.io/canary":                      "true",
			"nginx.ingress.kubernetes.io/canary-by-header":            "User-Agent",
			"nginx.ingress.kubernetes.io/canary-by-header-value":      "xiaoming",
			"mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag gray",
			"mse.ingress.kubernetes.io/service-subset":                "gray",
		} {
			if got.CanaryAnnotations[k] != v {
				t.Errorf("%s: canary Ingress annotation %s = %q, want %q", phase, k, got.CanaryAnnotations[k], v)
			}
			if line := k + `: "` + v + `"`; !strings.Contains(transcript, line) {
				t.Errorf("%s: the transcript does not show %s", phase, line)
			}
		}
		// A and C paused at their first batch with one Ready lane pod each; B untouched.
		for _, row := range [][]string{
			{"rollout-a", "Progressing", "1/2", "StepPaused", "1/1", "1"},
			{"rollout-b", "Healthy", "2/2", "Completed", "0/0", "0"},
			{"rollout-c", "Progressing", "1/2", "StepPaused", "1/1", "1"},
		} {
			assertStatusRow(t, phase, got.Status, row)
		}
	}
	for _, row := range [][]string{
		{"rollout-a", "Healthy", "2/2", "Completed", "2/2", "0"},
		{"rollout-c", "Healthy", "2/2", "Completed", "2/2", "0"},
	} {
		assertStatusRow(t, "approved", res.Approved.Status, row)
	}
	for _, want := range []string{"rollout-a: approved step 1", "rollout-c: approved step 1", "rollout-b: not approved"} {
		if !strings.Contains(res.Approve, want) {
			t.Errorf("approve output does not say %q:\n%s", want, res.Approve)
		}
	}
	for _, want := range []string{"rollout-a: Deployment/spring-cloud-a rolled back to revision", "rollout-c: Deployment/spring-cloud-c rolled back to revision", "rollout-b: nothing to roll back"} {
		if !strings.Contains(res.Rollback, want) {
			t.Errorf("rollback output does not say %q:\n%s", want, res.Rollback)
		}
	}

	// The cluster agrees: A and C run the approved release again (the rolled-back one is gone), B
	// never left its version, no pod keeps a lane label, every Rollout is Healthy and the lane's
	// entry is closed.
	ctx := t.Context()
	for svc, version := range map[string]string{
		"spring-cloud-a": lanedemo.FirstRelease, "spring-cloud-b": lanedemo.BaseVersion, "spring-cloud-c": lanedemo.FirstRelease,
	} {
		if err := framework.WaitForReadyPods(ctx, cluster.Client, ns, map[string]string{"app": svc}, stepTimeout, map[string]int{lanedemo.Image(version): 2}); err != nil {
			t.Error(err)
		}
		if _, err := framework.WaitForRollout(ctx, cluster.Client, client.ObjectKey{Namespace: ns, Name: "rollout-" + strings.TrimPrefix(svc, "spring-cloud-")}, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
			t.Error(err)
		}
	}
	pods := &corev1.PodList{}
	if err := cluster.Client.List(ctx, pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if got := laneLabelsOf(p); len(got) != 0 && p.DeletionTimestamp.IsZero() {
			t.Errorf("pod %s keeps lane labels %v after the rollback", p.Name, got)
		}
	}
	err = cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: lanedemo.CanaryIngress}, &networkingv1.Ingress{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("canary Ingress %s after the rollback: %v, want NotFound", lanedemo.CanaryIngress, err)
	}
	ro := &rolloutsv1beta1.Rollout{}
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rollout-b"}, ro); err != nil {
		t.Fatal(err)
	}
	if ro.Status.CanaryStatus != nil && ro.Status.CanaryStatus.CanaryReplicas != 0 {
		t.Errorf("rollout-b has %d canary replicas; B was never released", ro.Status.CanaryStatus.CanaryReplicas)
	}
}

// demoMeshAnswer is what the call from inside the mesh answers at each phase of the demo.
var demoMeshAnswer = map[string]string{
	"deployed":       "spring-cloud-a[base](v1) -> spring-cloud-b[base](v1) -> spring-cloud-c[base](v1)",
	"released":       "spring-cloud-a[gray](v2) -> spring-cloud-b[base](v1) -> spring-cloud-c[gray](v2)",
	"approved":       "spring-cloud-a[base](v2) -> spring-cloud-b[base](v1) -> spring-cloud-c[base](v2)",
	"released again": "spring-cloud-a[gray](v3) -> spring-cloud-b[base](v1) -> spring-cloud-c[gray](v3)",
	"rolled back":    "spring-cloud-a[base](v2) -> spring-cloud-b[base](v1) -> spring-cloud-c[base](v2)",
}

// demoAnswers sorts a phase's answers by probe: the mesh call, curl with x-mse-tag, curl
// without a header; each probe must have answered.
func demoAnswers(t *testing.T, phase string, answers map[string][]string) (mesh, tagged, plain []string) {
	t.Helper()
	for cmd, a := range answers {
		switch {
		case strings.HasPrefix(cmd, "grpc call"):
			mesh = a
		case strings.Contains(cmd, "x-mse-tag"):
			tagged = a
		case !strings.Contains(cmd, "-H"):
			plain = a
		}
	}
	if len(mesh) == 0 || len(tagged) == 0 || len(plain) == 0 {
		t.Errorf("%s: answers %v, want the mesh call, curl with x-mse-tag and curl without a header", phase, answers)
	}
	return mesh, tagged, plain
}

// assertStatusRow checks that `kubectl lanes status` printed the member's row with these columns
// (member, phase, step, state, canary ready/desired, lane pods), whatever the other columns say.
func assertStatusRow(t *testing.T, phase, status string, want []string) {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) != 8 || f[0] != want[0] {
			continue
		}
		got := []string{f[0], f[3], f[4], f[5], f[6], f[7]}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: status row of %s is %v, want %v\n%s", phase, want[0], got, want, status)
		}
		return
	}
	t.Errorf("%s: status shows no row for %s:\n%s", phase, want[0], status)
}
