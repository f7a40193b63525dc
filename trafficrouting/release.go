package trafficrouting

import (
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
)

// Releasing reports whether a Rollout is in a release: Kruise Rollouts v0.6.2 sets its
// status.phase to Progressing when its workload's pod template changes and keeps it there, through
// every step, pause, finalising (promotion) and cancelling (rollback), until it ends the release
// with phase Healthy. While a member is releasing its pods of the new revision are the lane's
// canary and carry the lane's labels (RoleOf), and kubectl lanes counts it among the members to
// approve, roll back or wait for. Outside a release every pod is stable.
func Releasing(r *rolloutsv1beta1.Rollout) bool {
	return r.Status.Phase == rolloutsv1beta1.RolloutPhaseProgressing
}

// Routable reports whether a releasing Rollout still takes lane traffic through the routes
// Kruise Lanes writes for a mesh: it is Releasing, not being deleted, and Kruise v0.6.2 has not
// begun to end the release, which it says with the reason of the Progressing condition:
// Finalising (approved to the end: it restores the entry and promotes) or Cancelling (the workload
// went back to its stable revision). From that moment the lane's mesh routes are removed, before
// Kruise changes the member's pods, while the pods keep their lane labels until they are stable.
func Routable(r *rolloutsv1beta1.Rollout) bool {
	if !Releasing(r) || !r.DeletionTimestamp.IsZero() {
		return false
	}
	for _, c := range r.Status.Conditions {
		if c.Type == rolloutsv1beta1.RolloutConditionProgressing {
			return c.Reason != rolloutsv1beta1.ProgressingReasonFinalising && c.Reason != rolloutsv1beta1.ProgressingReasonCancelling
		}
	}
	return true
}
