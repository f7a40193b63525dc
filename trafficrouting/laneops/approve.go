package laneops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openkruise/rollouts/api/v1beta1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ApprovePatch is the JSON merge patch `kubectl-kruise rollout approve` sends to a Rollout's status.
const ApprovePatch = `{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`

// ErrNotPaused means Approve was asked to approve a Rollout that is not paused at a step.
var ErrNotPaused = errors.New("not paused at a step")

// How Approve makes an approval hold: it reads the Rollout back every approveCheckEvery, up to
// approveChecks times, and sends the approval at most approveSends times in all.
const (
	approveSends      = 4
	approveChecks     = 40
	approveCheckEvery = 500 * time.Millisecond
)

// Approve approves the step r is paused at and makes sure the approval holds; r is updated to the
// Rollout as last read. Kruise v0.6.2 writes a Rollout's status from its cached copy, so an
// approval that lands during one of its reconciles can be overwritten back to StepPaused at the
// same step, even after the Rollout was read back as StepReady. The approval holds once the
// Rollout has left the step (or reached a state past StepReady); while it is StepReady it is only
// watched, and while it is StepPaused at the same step the approval is sent again (a Rollout that
// moved on is never paused at the same step index, so this cannot approve a later step).
func Approve(ctx context.Context, c client.Client, r *v1beta1.Rollout) error {
	cs := r.Status.CanaryStatus
	if cs == nil || cs.CurrentStepState != v1beta1.CanaryStepStatePaused {
		state := ""
		if cs != nil {
			state = string(cs.CurrentStepState)
		}
		return fmt.Errorf("rollout %s is %w (phase %s, state %s)", r.Name, ErrNotPaused, r.Status.Phase, state)
	}
	step := cs.CurrentStepIndex
	sent, resend := 0, true
	for check := 0; check < approveChecks; check++ {
		if resend {
			if sent == approveSends {
				break
			}
			if err := c.Status().Patch(ctx, r, client.RawPatch(types.MergePatchType, []byte(ApprovePatch))); err != nil {
				return fmt.Errorf("approve rollout %s: %w", r.Name, err)
			}
			sent++
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(approveCheckEvery):
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(r), r); err != nil {
			return fmt.Errorf("read rollout %s back: %w", r.Name, err)
		}
		cs := r.Status.CanaryStatus
		if cs == nil || cs.CurrentStepIndex != step {
			return nil
		}
		switch cs.CurrentStepState {
		case v1beta1.CanaryStepStatePaused:
			resend = true
		case v1beta1.CanaryStepStateReady:
			resend = false
		default:
			return nil
		}
	}
	return fmt.Errorf("Kruise kept rollout %s at step %d (%s) after %d approvals; see its status message", r.Name, step, r.Status.CanaryStatus.CurrentStepState, sent)
}
