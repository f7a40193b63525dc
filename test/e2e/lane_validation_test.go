//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// kubectl runs the kubectl built by `make tools` against the suite's cluster in namespace ns,
// with stdin as its input, and returns what it printed and its exit code.
func kubectl(t *testing.T, ns, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := filepath.Join(cluster.ToolsBin, "kubectl")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kubectl is missing from %s; build the tools with `make tools`: %v", cluster.ToolsBin, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", cluster.Kubeconfig, "-n", ns}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("kubectl %s -> exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

// A lane that ORs two different headers, which no MSE Ingress can express.
const validationORLane = `
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata: {name: or-lane}
spec:
  objectRef:
  - service: web
    ingress: {classType: mse, name: web}
  strategy:
    matches:
    - headers: [{name: x-user, value: tester}]
    - headers: [{name: x-region, value: eu}]
    requestHeaderModifier:
      set: [{name: x-mse-tag, value: gray}]
`

// A lane whose step has a header match and a weight: accepted, but MSE ignores the weight. The
// accepted objects spell out the fields the CRDs' schemas default (gracePeriodSeconds, type,
// disabled) and the empty pause Kruise's controller writes back with its finalizer, so that what
// is stored must equal what is applied.
const validationLane = `
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata:
  name: lane
  annotations: {kruise-lanes.io/dialects: "mse,asm"}
spec:
  objectRef:
  - service: web
    gracePeriodSeconds: 3
    ingress: {classType: mse, name: web}
  strategy:
    weight: 20
    matches:
    - headers: [{name: x-user, type: Exact, value: tester}]
    requestHeaderModifier:
      set: [{name: x-mse-tag, value: gray}]
`

// validationMember is a member of the lane whose own step is %s.
const validationMember = `
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: %s
  annotations: {rollouts.kruise.io/trafficrouting: lane}
spec:
  disabled: false
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  strategy:
    canary:
      trafficRoutings:
      - service: web
        gracePeriodSeconds: 3
        ingress: {classType: mse, name: web}
      steps:
      - replicas: 50%%
        pause: {}
        matches:
        - %s
`

// TestLaneValidationAtApply: with the lane validator on, `kubectl apply` refuses a TrafficRouting
// that ORs two headers on an MSE Ingress and a member Rollout whose step has a path condition,
// printing the validator's sentence; the API server stores neither. A lane with a header match and
// a weight on one step, and a member with a header match, are stored exactly as applied, the lane
// with kubectl printing the validator's warning. Once lanes-manager is gone, failurePolicy Ignore
// lets the refused lane through. Not parallel: it points the pod webhook at its own manager.
func TestLaneValidationAtApply(t *testing.T) {
	ctx := t.Context()
	ns := cluster.Namespace(t)
	installMSEProvider(t)
	m := cluster.StartLanesManagerWithValidation(t, ns, "--providers=mse")

	// The API server picks the new configuration up within moments: wait for the first refusal.
	var stderr string
	err := framework.WaitFor(ctx, stepTimeout, "kubectl apply refusing the OR lane", func(context.Context) (bool, error) {
		var code int
		_, stderr, code = kubectl(t, ns, validationORLane, "apply", "--dry-run=server", "-f", "-")
		return code != 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, code := kubectl(t, ns, validationORLane, "apply", "-f", "-")
	wantExit(t, code, 1, "kubectl apply of the OR lane")
	for _, want := range []string{
		`admission webhook "lanes.lanes.kruise-lanes.io" denied the request`,
		"lane " + ns + "/or-lane is misconfigured",
		"matches 1 and 2 cannot be ORed by the mse ingress",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("kubectl's refusal does not say %q:\n%s", want, stderr)
		}
	}
	assertAbsent(t, ns, "TrafficRouting", "or-lane")

	rollout := func(name, match string) string { return fmt.Sprintf(validationMember, name, match) }
	_, stderr, code = kubectl(t, ns, rollout("web-path", "path: {type: PathPrefix, value: /api}"), "apply", "-f", "-")
	wantExit(t, code, 1, "kubectl apply of the member with a path condition")
	for _, want := range []string{
		`admission webhook "lanes.lanes.kruise-lanes.io" denied the request`,
		"rollout " + ns + "/web-path, a member of lane lane, is misconfigured",
		"match 1 has a path condition; an ingress canary keeps the stable Ingress's paths",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("kubectl's refusal does not say %q:\n%s", want, stderr)
		}
	}
	assertAbsent(t, ns, "Rollout", "web-path")

	stdout, stderr, code := kubectl(t, ns, validationLane, "apply", "-o", "json", "-f", "-")
	wantExit(t, code, 0, "kubectl apply of the lane")
	if want := "Warning: kruise-lanes: spec.strategy has both matches and a weight (20%): the mse provider routes only the matching requests and ignores the weight"; !strings.Contains(stderr, want) {
		t.Errorf("kubectl printed no warning %q:\n%s", want, stderr)
	}
	assertCreatedAsApplied(t, validationLane, stdout)

	member := rollout("web", "headers: [{name: x-user, type: Exact, value: tester}]")
	stdout, stderr, code = kubectl(t, ns, member, "apply", "-o", "json", "-f", "-")
	wantExit(t, code, 0, "kubectl apply of the member")
	if strings.Contains(stderr, "kruise-lanes") {
		t.Errorf("kubectl printed a word from the validator for a member it accepts: %q", stderr)
	}
	assertCreatedAsApplied(t, member, stdout)

	// failurePolicy Ignore: with lanes-manager gone, applies are not blocked (nor checked).
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	stdout, _, code = kubectl(t, ns, validationORLane, "apply", "-f", "-")
	wantExit(t, code, 0, "kubectl apply of the OR lane with lanes-manager down")
	if !strings.Contains(stdout, "trafficrouting.rollouts.kruise.io/or-lane created") {
		t.Errorf("kubectl did not create the OR lane with lanes-manager down: %s", stdout)
	}
}

func assertAbsent(t *testing.T, ns, kind, name string) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	obj.SetKind(kind)
	err := cluster.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	if !apierrors.IsNotFound(err) {
		t.Errorf("%s %s/%s after a refused apply: %v, want NotFound", kind, ns, name, err)
	}
}

// assertCreatedAsApplied compares the object the API server returned when kubectl created it
// (created: printed is `kubectl apply -o json`'s output) with manifest: the same spec and
// annotations, but kubectl's own last-applied-configuration. The response is the object as
// admission left it, before any controller writes to it (Kruise's rollout controller adds its
// rollouts.kruise.io/hash moments later), so a difference is admission's doing.
func assertCreatedAsApplied(t *testing.T, manifest, printed string) {
	t.Helper()
	applied := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &applied.Object); err != nil {
		t.Fatal(err)
	}
	created := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(printed), &created.Object); err != nil {
		t.Fatalf("kubectl apply -o json printed no object: %v\n%s", err, printed)
	}
	if created.GetKind() != applied.GetKind() || created.GetName() != applied.GetName() || created.GetUID() == "" {
		t.Fatalf("kubectl apply did not create %s %s: it printed %s %s (uid %q)",
			applied.GetKind(), applied.GetName(), created.GetKind(), created.GetName(), created.GetUID())
	}
	annotations := created.GetAnnotations()
	delete(annotations, "kubectl.kubernetes.io/last-applied-configuration")
	if diff := cmp.Diff(applied.GetAnnotations(), annotations); diff != "" {
		t.Errorf("%s %s: annotations created differ from those applied (-applied +created):\n%s", applied.GetKind(), applied.GetName(), diff)
	}
	if diff := cmp.Diff(asJSON(t, applied.Object["spec"]), asJSON(t, created.Object["spec"])); diff != "" {
		t.Errorf("%s %s: spec created differs from the one applied (-applied +created):\n%s", applied.GetKind(), applied.GetName(), diff)
	}
}

// asJSON is v as JSON decoding gives it (float64 numbers), so that YAML and API values compare.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
