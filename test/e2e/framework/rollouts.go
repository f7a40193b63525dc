//go:build e2e

package framework

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// ApproveRollout approves the step the Rollout is paused at, with the approval kubectl lanes
// sends (laneops.Approve: re-sent while Kruise v0.6.2 overwrites it from its cache, done once the
// Rollout has left the step).
func ApproveRollout(ctx context.Context, c client.Client, key client.ObjectKey) error {
	ro := &rolloutsv1beta1.Rollout{}
	if err := c.Get(ctx, key, ro); err != nil {
		return fmt.Errorf("approving rollout %s: %w", key, err)
	}
	if err := laneops.Approve(ctx, c, ro); err != nil {
		return fmt.Errorf("approving rollout %s: %w (%s)", key, err, ro.Status.Message)
	}
	return nil
}

// RolloutCheck inspects a Rollout (read as v1beta1, whatever version it was written in) and returns
// nil when it is in the awaited state, or a Pending error saying what it is instead.
type RolloutCheck func(*rolloutsv1beta1.Rollout) error

// WaitForRollout polls the Rollout until check passes, and returns the Rollout as last seen.
func WaitForRollout(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration, what string, check RolloutCheck) (*rolloutsv1beta1.Rollout, error) {
	ro := &rolloutsv1beta1.Rollout{}
	err := WaitFor(ctx, timeout, fmt.Sprintf("rollout %s %s", key.Name, what), func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, ro); err != nil {
			return false, err
		}
		if err := check(ro); err != nil {
			return false, err
		}
		return true, nil
	})
	return ro, err
}

// RolloutHealthy passes when the controller has observed the latest spec and the Rollout is Healthy.
func RolloutHealthy() RolloutCheck {
	return func(ro *rolloutsv1beta1.Rollout) error {
		if ro.Status.ObservedGeneration != ro.Generation || ro.Status.Phase != rolloutsv1beta1.RolloutPhaseHealthy {
			return Pending("phase %q (observed generation %d of %d): %s", ro.Status.Phase, ro.Status.ObservedGeneration, ro.Generation, ro.Status.Message)
		}
		return nil
	}
}

// RolloutPausedAt passes when the canary is paused at step (1-based) waiting for approval.
func RolloutPausedAt(step int32) RolloutCheck {
	return func(ro *rolloutsv1beta1.Rollout) error {
		cs := ro.Status.CanaryStatus
		if cs == nil {
			return Pending("phase %q, no canary status yet: %s", ro.Status.Phase, ro.Status.Message)
		}
		if cs.CurrentStepIndex != step || cs.CurrentStepState != rolloutsv1beta1.CanaryStepStatePaused {
			return Pending("canary at step %d state %q: %s", cs.CurrentStepIndex, cs.CurrentStepState, ro.Status.Message)
		}
		return nil
	}
}

// RolloutCompleted passes when the release finished: phase Healthy and condition Progressing with
// reason Completed.
func RolloutCompleted() RolloutCheck {
	return func(ro *rolloutsv1beta1.Rollout) error {
		if err := RolloutHealthy()(ro); err != nil {
			return err
		}
		for _, cond := range ro.Status.Conditions {
			if cond.Type == rolloutsv1beta1.RolloutConditionProgressing {
				if cond.Reason != rolloutsv1beta1.ProgressingReasonCompleted {
					return Pending("condition Progressing has reason %q: %s", cond.Reason, cond.Message)
				}
				return nil
			}
		}
		return Pending("no Progressing condition")
	}
}

// WaitForTrafficRoutingPhase polls a TrafficRouting until its phase is phase.
func WaitForTrafficRoutingPhase(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration, phase rolloutsv1alpha1.TrafficRoutingPhase) (*rolloutsv1alpha1.TrafficRouting, error) {
	tr := &rolloutsv1alpha1.TrafficRouting{}
	err := WaitFor(ctx, timeout, fmt.Sprintf("trafficrouting %s to be %s", key.Name, phase), func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, tr); err != nil {
			return false, err
		}
		if tr.Status.Phase != phase {
			return false, Pending("phase %q: %s", tr.Status.Phase, tr.Status.Message)
		}
		return true, nil
	})
	return tr, err
}

// PodsByImage returns the pods matching selector in namespace that are Ready, counted by the image
// of their first container, and the total number of pods (Ready or not).
func PodsByImage(ctx context.Context, c client.Client, namespace string, selector map[string]string) (ready map[string]int, total int, err error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(selector)}); err != nil {
		return nil, 0, fmt.Errorf("listing pods: %w", err)
	}
	ready = map[string]int{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		total++
		if podReady(p) && len(p.Spec.Containers) > 0 {
			ready[p.Spec.Containers[0].Image]++
		}
	}
	return ready, total, nil
}

// WaitForReadyPods polls until exactly want[image] Ready pods run each image of want and no other
// pod matches selector.
func WaitForReadyPods(ctx context.Context, c client.Client, namespace string, selector map[string]string, timeout time.Duration, want map[string]int) error {
	wantTotal := 0
	for _, n := range want {
		wantTotal += n
	}
	return WaitFor(ctx, timeout, fmt.Sprintf("ready pods %v for %v", want, selector), func(ctx context.Context) (bool, error) {
		ready, total, err := PodsByImage(ctx, c, namespace, selector)
		if err != nil {
			return false, err
		}
		if total != wantTotal || len(ready) != len(want) {
			return false, Pending("%d pods, ready by image %v", total, ready)
		}
		for image, n := range want {
			if ready[image] != n {
				return false, Pending("%d pods, ready by image %v", total, ready)
			}
		}
		return true, nil
	})
}

// WaitForDeploymentAvailable polls until the Deployment's controller has observed its latest spec
// and all its replicas are updated and available.
func WaitForDeploymentAvailable(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration) error {
	return WaitFor(ctx, timeout, fmt.Sprintf("deployment %s to be available", key.Name), func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, key, d); err != nil {
			return false, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st := d.Status
		if st.ObservedGeneration != d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
			return false, Pending("observed %d of %d, replicas %d updated %d available %d, want %d",
				st.ObservedGeneration, d.Generation, st.Replicas, st.UpdatedReplicas, st.AvailableReplicas, want)
		}
		return true, nil
	})
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
