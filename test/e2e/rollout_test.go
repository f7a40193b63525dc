//go:build e2e

package e2e

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// stepTimeout bounds each wait for Kruise to reach the next state; a step normally takes seconds.
const stepTimeout = 90 * time.Second

// TestPartitionRolloutOnDeployment releases a new image of a Deployment through a v1beta1 Rollout
// in partition style (Kruise's AdvancedDeployment gate): 1 pod, then 50%, then 100%, each step with
// `pause: {}`, approved exactly as kubectl-kruise does.
func TestPartitionRolloutOnDeployment(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := cluster.Client
	ns := cluster.Namespace(t)
	const (
		name     = "demo"
		oldImage = "example.com/demo:v1"
		newImage = "example.com/demo:v2"
		replicas = 4
	)
	selector := map[string]string{"app": name}
	key := client.ObjectKey{Namespace: ns, Name: name}

	if err := c.Create(ctx, deployment(ns, name, oldImage, replicas)); err != nil {
		t.Fatalf("creating the deployment: %v", err)
	}
	ro := &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Strategy: rolloutsv1beta1.RolloutStrategy{
				Canary: &rolloutsv1beta1.CanaryStrategy{
					Steps: []rolloutsv1beta1.CanaryStep{
						{Replicas: ptr.To(intstr.FromInt32(1)), Pause: rolloutsv1beta1.RolloutPause{}},
						{Replicas: ptr.To(intstr.FromString("50%")), Pause: rolloutsv1beta1.RolloutPause{}},
						{Replicas: ptr.To(intstr.FromString("100%")), Pause: rolloutsv1beta1.RolloutPause{}},
					},
				},
			},
		},
	}
	releaseWithRollout(t, ro, newImage)

	// Steps 1 and 2: the canary is paused with exactly that many Ready new pods, the rest still old.
	// Step 3 never pauses: Kruise v0.6.2 treats a last step of "100%" as done as soon as it is
	// reached, whatever its pause says (doCanaryPaused), so the second approval completes the release.
	for _, want := range []struct {
		step          int32
		canary, older int
	}{
		{step: 1, canary: 1, older: 3},
		{step: 2, canary: 2, older: 2},
	} {
		if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to pause at its step", framework.RolloutPausedAt(want.step)); err != nil {
			t.Fatal(err)
		}
		pods := map[string]int{newImage: want.canary}
		if want.older > 0 {
			pods[oldImage] = want.older
		}
		if err := framework.WaitForReadyPods(ctx, c, ns, selector, stepTimeout, pods); err != nil {
			t.Fatalf("step %d: %v", want.step, err)
		}
		if err := framework.ApproveRollout(ctx, c, key); err != nil {
			t.Fatal(err)
		}
	}

	done, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to complete", framework.RolloutCompleted())
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForDeploymentAvailable(ctx, c, key, stepTimeout); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForReadyPods(ctx, c, ns, selector, stepTimeout, map[string]int{newImage: replicas}); err != nil {
		t.Fatal(err)
	}
	if done.Status.CanaryStatus != nil && done.Status.CanaryStatus.CurrentStepState != rolloutsv1beta1.CanaryStepStateCompleted {
		t.Errorf("canary step state = %q, want %q", done.Status.CanaryStatus.CurrentStepState, rolloutsv1beta1.CanaryStepStateCompleted)
	}
}

// releaseWithRollout creates the Rollout of the Deployment of the same name, waits until both are
// settled, then releases newImage.
func releaseWithRollout(t *testing.T, ro *rolloutsv1beta1.Rollout, newImage string) {
	t.Helper()
	ctx, c := t.Context(), cluster.Client
	key := client.ObjectKey{Namespace: ro.Namespace, Name: ro.Spec.WorkloadRef.Name}
	if err := c.Create(ctx, ro); err != nil {
		t.Fatalf("creating the rollout: %v", err)
	}
	if _, err := framework.WaitForRollout(ctx, c, client.ObjectKeyFromObject(ro), stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForDeploymentAvailable(ctx, c, key, stepTimeout); err != nil {
		t.Fatal(err)
	}
	setImage(t, key, newImage)
}

// setImage changes the image of the first container of a Deployment, as `kubectl set image` does.
func setImage(t *testing.T, key client.ObjectKey, image string) {
	t.Helper()
	patch := []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"` + key.Name + `","image":"` + image + `"}]}}}}`)
	d := deployment(key.Namespace, key.Name, "", 0)
	if err := cluster.Client.Patch(t.Context(), d, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		t.Fatalf("setting the image of %s: %v", key, err)
	}
}
