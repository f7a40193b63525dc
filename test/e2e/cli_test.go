//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/cmd/kubectl-lanes/app"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// cliLane is the seed 002 lane in Kruise's own style: v1alpha1 Rollouts whose extra canary
// Deployments get the lane labels from patchPodTemplateMetadata, so no lanes-manager is needed.
const cliLane = `
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata: {name: mse-traffic}
spec:
  objectRef:
  - service: spring-cloud-a
    ingress: {classType: mse, name: spring-cloud-a}
  strategy:
    matches:
    - headers: [{type: Exact, name: User-Agent, value: xiaoming}]
    requestHeaderModifier:
      set: [{name: x-mse-tag, value: gray}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: spring-cloud-a
  annotations: {mse.ingress.kubernetes.io/service-subset: ""}
spec:
  ingressClassName: mse
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service: {name: spring-cloud-a, port: {number: 20001}}
`

const cliRollout = `
---
apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: rollout-%[1]s
  annotations: {rollouts.kruise.io/trafficrouting: mse-traffic}
spec:
  objectRef:
    workloadRef: {apiVersion: apps/v1, kind: Deployment, name: spring-cloud-%[1]s}
  strategy:
    canary:
      steps:
      - replicas: 1
        pause: {}
      patchPodTemplateMetadata:
        labels: {alicloud.service.tag: gray, opensergo.io/canary-gray: gray}
`

// lanes runs kubectl-lanes in process against the test cluster and returns its output and exit code.
func lanes(t *testing.T, ns string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{args[0], "--kubeconfig", cluster.Kubeconfig, "-n", ns}, args[1:]...)
	code = app.Run(t.Context(), full, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	t.Logf("kubectl lanes %s -> exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

func wantExit(t *testing.T, code, want int, what string) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: exit %d, want %d", what, code, want)
	}
}

// TestCLILaneLifecycle drives a whole lane with kubectl lanes through the real Kruise controller:
// list, wait for the canaries, status, trace, approve (refusing a member that is not paused), wait
// for completion with a timeout, then a second release rolled back with rollback.
func TestCLILaneLifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := cluster.Client
	ns := cluster.Namespace(t)
	installMSEProvider(t)
	manifest := cliLane
	for _, svc := range []string{"a", "b", "c"} {
		manifest += fmt.Sprintf(cliRollout, svc)
	}
	for _, svc := range []string{"a", "b", "c"} {
		name := "spring-cloud-" + svc
		if err := c.Create(ctx, service(ns, name)); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, deployment(ns, name, "example.com/"+name+":v1", 2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := framework.ApplyYAML(ctx, c, ns, []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	_, _, code := lanes(t, ns, "wait", "mse-traffic", "--for=healthy", "--timeout=90s", "--interval=500ms")
	wantExit(t, code, 0, "wait --for=healthy before the release")

	out, _, code := lanes(t, ns, "list")
	wantExit(t, code, 0, "list")
	if !strings.Contains(out, "mse-traffic") || !strings.Contains(out, "rollout-a,rollout-b,rollout-c") || !strings.Contains(out, "gray") {
		t.Errorf("list does not show the lane with its tag and three members:\n%s", out)
	}

	chain := "--chain=spring-cloud-a,spring-cloud-b,spring-cloud-c"
	out, _, _ = lanes(t, ns, "trace", "mse-traffic", chain)
	if strings.TrimSpace(out) != "spring-cloud-a[base] -> spring-cloud-b[base] -> spring-cloud-c[base]" {
		t.Errorf("trace before the release = %q", out)
	}

	// Release A and C.
	setImage(t, client.ObjectKey{Namespace: ns, Name: "spring-cloud-a"}, "example.com/spring-cloud-a:v2")
	setImage(t, client.ObjectKey{Namespace: ns, Name: "spring-cloud-c"}, "example.com/spring-cloud-c:v2")
	_, _, code = lanes(t, ns, "wait", "mse-traffic", "--for=paused", "--timeout=120s", "--interval=500ms")
	wantExit(t, code, 0, "wait --for=paused")
	err := framework.WaitFor(ctx, stepTimeout, "the lane trace to reach the canaries of A and C", func(context.Context) (bool, error) {
		out, _, _ := lanes(t, ns, "trace", "mse-traffic", chain)
		return strings.TrimSpace(out) == "spring-cloud-a[gray] -> spring-cloud-b[base] -> spring-cloud-c[gray]", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _, code = lanes(t, ns, "status", "mse-traffic")
	wantExit(t, code, 0, "status")
	for _, want := range []string{"rollout-a", "StepPaused", "1/1", "Ingress spring-cloud-a-canary"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	_, errOut, code := lanes(t, ns, "approve", "mse-traffic", "--member", "rollout-b")
	wantExit(t, code, 1, "approve of a member that is not paused")
	if !strings.Contains(errOut, "nothing approved") {
		t.Errorf("approve of rollout-b: stderr %q", errOut)
	}
	_, errOut, code = lanes(t, ns, "wait", "mse-traffic", "--for=completed", "--timeout=1s", "--interval=200ms")
	wantExit(t, code, 2, "wait --for=completed that times out")
	if !strings.Contains(errOut, "timed out") {
		t.Errorf("wait timeout stderr %q", errOut)
	}
	out, _, code = lanes(t, ns, "approve", "mse-traffic")
	wantExit(t, code, 0, "approve")
	if !strings.Contains(out, "rollout-a: approved") || !strings.Contains(out, "rollout-c: approved") || !strings.Contains(out, "rollout-b: not approved") {
		t.Errorf("approve output:\n%s", out)
	}
	_, _, code = lanes(t, ns, "wait", "mse-traffic", "--for=completed", "--timeout=120s", "--interval=500ms")
	wantExit(t, code, 0, "wait --for=completed")
	_, _, code = lanes(t, ns, "wait", "mse-traffic", "--for=healthy", "--timeout=60s", "--interval=500ms")
	wantExit(t, code, 0, "wait --for=healthy after the release")

	// A second release of A, rolled back.
	setImage(t, client.ObjectKey{Namespace: ns, Name: "spring-cloud-a"}, "example.com/spring-cloud-a:v3")
	_, _, code = lanes(t, ns, "wait", "mse-traffic", "--for=paused", "--timeout=120s", "--interval=500ms")
	wantExit(t, code, 0, "wait --for=paused (second release)")
	// A pipeline waiting for completion learns of the rollback: wait exits 1.
	waited := make(chan int, 1)
	go func() {
		_, _, code := lanes(t, ns, "wait", "mse-traffic", "--for=completed", "--timeout=120s", "--interval=300ms")
		waited <- code
	}()
	time.Sleep(time.Second) // let wait record the release it is waiting for
	out, _, code = lanes(t, ns, "rollback", "mse-traffic")
	wantExit(t, code, 0, "rollback")
	wantExit(t, <-waited, 1, "wait --for=completed across a rollback")
	if !strings.Contains(out, "rollout-a: Deployment/spring-cloud-a rolled back") {
		t.Errorf("rollback output:\n%s", out)
	}
	_, _, code = lanes(t, ns, "wait", "mse-traffic", "--for=healthy", "--timeout=120s", "--interval=500ms")
	wantExit(t, code, 0, "wait --for=healthy after the rollback")
	err = framework.WaitFor(ctx, stepTimeout, "A's pods back on v2", func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": "spring-cloud-a"}); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp.IsZero() && p.Spec.Containers[0].Image != "example.com/spring-cloud-a:v2" {
				return false, nil
			}
		}
		return len(pods.Items) > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = lanes(t, ns, "rollback", "mse-traffic")
	wantExit(t, code, 1, "rollback with nothing releasing")
	if !strings.Contains(errOut, "nothing rolled back") {
		t.Errorf("second rollback stderr %q", errOut)
	}
	_, errOut, code = lanes(t, ns, "status", "no-such-lane")
	wantExit(t, code, 1, "status of a missing lane")
	if !strings.Contains(errOut, `no TrafficRouting "no-such-lane"`) {
		t.Errorf("missing lane stderr %q", errOut)
	}
}
