package trafficrouting

import (
	"testing"
	"time"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReleasingAndRoutable(t *testing.T) {
	withReason := func(phase rolloutsv1beta1.RolloutPhase, reason string) *rolloutsv1beta1.Rollout {
		ro := &rolloutsv1beta1.Rollout{Status: rolloutsv1beta1.RolloutStatus{Phase: phase}}
		if reason != "" {
			ro.Status.Conditions = []rolloutsv1beta1.RolloutCondition{{Type: rolloutsv1beta1.RolloutConditionProgressing, Status: corev1.ConditionTrue, Reason: reason}}
		}
		return ro
	}
	deleted := withReason(rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonInRolling)
	deleted.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	tests := map[string]struct {
		ro                          *rolloutsv1beta1.Rollout
		wantReleasing, wantRoutable bool
	}{
		"progressing, no condition yet": {withReason(rolloutsv1beta1.RolloutPhaseProgressing, ""), true, true},
		"in rolling":                    {withReason(rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonInRolling), true, true},
		"paused":                        {withReason(rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonPaused), true, true},
		// Kruise is promoting or rolling back: still a release (the pods keep their labels until
		// they are stable), but the lane routes go first.
		"finalising": {withReason(rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonFinalising), true, false},
		"cancelling": {withReason(rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonCancelling), true, false},
		"deleted":    {deleted, true, false},
		"completed":  {withReason(rolloutsv1beta1.RolloutPhaseHealthy, rolloutsv1beta1.ProgressingReasonCompleted), false, false},
		"disabled":   {withReason(rolloutsv1beta1.RolloutPhaseDisabled, ""), false, false},
	}
	for name, tc := range tests {
		if got := Releasing(tc.ro); got != tc.wantReleasing {
			t.Errorf("%s: Releasing %v, want %v", name, got, tc.wantReleasing)
		}
		if got := Routable(tc.ro); got != tc.wantRoutable {
			t.Errorf("%s: Routable %v, want %v", name, got, tc.wantRoutable)
		}
	}
}
