package app

import (
	"errors"
	"fmt"
	"strings"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
)

// Exit codes of `wait`, for pipelines.
const (
	exitFailed   = 1
	exitTimedOut = 2
)

// waitGoal is what `wait --for` waits for.
type waitGoal string

const (
	goalPaused    waitGoal = "paused"
	goalCompleted waitGoal = "completed"
	goalHealthy   waitGoal = "healthy"
)

// verdict is one look at the lane: done, failed (with why), or not yet (with what is missing).
type verdict struct {
	done   bool
	failed string
	notYet string
}

// releaseStart remembers which members were releasing when wait began.
type releaseStart map[string]bool

func startOf(st *laneState) releaseStart {
	out := releaseStart{}
	for _, m := range st.Members {
		if m.releasing() {
			out[m.Rollout.Name] = true
		}
	}
	return out
}

// rolledBack reports whether a member that was releasing when wait began was rolled back instead
// of completing. Kruise marks it in the Rollout's conditions: Progressing turns to reason
// Cancelling when the workload goes back to its stable revision, and a cancelled release ends
// with Succeeded=False.
func rolledBack(m member, wasReleasing bool) bool {
	if !wasReleasing {
		return false
	}
	for _, c := range m.Rollout.Status.Conditions {
		switch {
		case c.Type == rolloutsv1beta1.RolloutConditionProgressing && c.Reason == rolloutsv1alpha1.ProgressingReasonCancelling:
			return true
		case c.Type == rolloutsv1beta1.RolloutConditionSucceeded && c.Status == corev1.ConditionFalse && !m.releasing():
			return true
		}
	}
	return false
}

// judge decides how far the lane is from the goal.
func judge(st *laneState, goal waitGoal, start releaseStart) verdict {
	for _, m := range st.Members {
		switch m.Rollout.Status.Phase {
		case rolloutsv1beta1.RolloutPhaseDisabled, rolloutsv1beta1.RolloutPhaseDisabling, rolloutsv1beta1.RolloutPhaseTerminating:
			return verdict{failed: fmt.Sprintf("member %s is %s", m.Rollout.Name, m.Rollout.Status.Phase)}
		}
		// Waiting for healthy is how a pipeline waits for a rollback to finish, so only the
		// other goals treat a rollback as a failure.
		if goal != goalHealthy && rolledBack(m, start[m.Rollout.Name]) {
			return verdict{failed: fmt.Sprintf("member %s was rolled back: %s", m.Rollout.Name, m.Rollout.Status.Message)}
		}
	}
	if len(st.Members) == 0 {
		return verdict{notYet: "the lane has no member Rollouts"}
	}
	var missing []string
	switch goal {
	case goalPaused:
		releasing := 0
		for _, m := range st.Members {
			if !m.releasing() {
				continue
			}
			releasing++
			if m.stepState() != rolloutsv1beta1.CanaryStepStatePaused {
				missing = append(missing, fmt.Sprintf("%s is %s", m.Rollout.Name, orDash(string(m.stepState()))))
			}
		}
		if releasing == 0 {
			return verdict{notYet: "no member is releasing"}
		}
	case goalCompleted, goalHealthy:
		for _, m := range st.Members {
			if m.Rollout.Status.Phase != rolloutsv1beta1.RolloutPhaseHealthy {
				missing = append(missing, fmt.Sprintf("%s is %s/%s", m.Rollout.Name, orDash(string(m.Rollout.Status.Phase)), orDash(string(m.stepState()))))
			}
		}
		if goal == goalHealthy && st.TrafficRouting.Status.Phase != rolloutsv1alpha1.TrafficRoutingPhaseHealthy {
			missing = append(missing, fmt.Sprintf("the lane is %s", orDash(string(st.TrafficRouting.Status.Phase))))
		}
	}
	if len(missing) > 0 {
		return verdict{notYet: strings.Join(missing, ", ")}
	}
	return verdict{done: true}
}

func newWaitCommand(streams Streams, getter ClientGetter) *cobra.Command {
	var goal string
	var timeout, interval time.Duration
	cmd := &cobra.Command{
		Use:   "wait LANE --for=paused|completed|healthy [--timeout D]",
		Short: "Wait until every member is paused, completed or healthy; exit 0 reached, 1 failed or rolled back, 2 timed out",
		Long: "wait polls the lane until the goal holds:\n" +
			"  paused     every releasing member is paused at a step (StepPaused)\n" +
			"  completed  every member is Healthy again after its release\n" +
			"  healthy    every member and the lane (TrafficRouting) are Healthy\n" +
			"It exits 0 when the goal holds, 2 when --timeout passes first, and 1 when the lane or a member is missing,\n" +
			"Disabled or Terminating, or - for paused and completed - a member that was releasing is rolled back.",
		Example: "  kubectl lanes wait mse-traffic --for=paused --timeout=10m && kubectl lanes approve mse-traffic\n" +
			"  kubectl lanes wait mse-traffic --for=completed --timeout=30m",
		Args: exactlyOneLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			g := waitGoal(goal)
			if g != goalPaused && g != goalCompleted && g != goalHealthy {
				return fmt.Errorf("--for %q: use paused, completed or healthy", goal)
			}
			c, ns, d, err := connect(cmd.Context(), streams, getter)
			if err != nil {
				return err
			}
			// Reads use the command's context, not the deadline, so a read is never mistaken for
			// a failure because the deadline is near; the deadline is checked between looks.
			ctx := cmd.Context()
			deadline := time.NewTimer(timeout)
			defer deadline.Stop()
			var start releaseStart
			for {
				st, err := loadLane(ctx, c, ns, args[0], d)
				switch {
				case errors.Is(err, errLaneNotFound):
					return &ExitError{Code: exitFailed, Err: err}
				case err != nil:
					return err
				}
				if start == nil {
					start = startOf(st)
				}
				v := judge(st, g, start)
				switch {
				case v.failed != "":
					return &ExitError{Code: exitFailed, Err: fmt.Errorf("lane %s failed: %s", args[0], v.failed)}
				case v.done:
					fmt.Fprintf(streams.Out, "lane %s is %s\n", args[0], g)
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-deadline.C:
					return &ExitError{Code: exitTimedOut, Err: fmt.Errorf("timed out after %s waiting for lane %s to be %s: %s", timeout, args[0], g, v.notYet)}
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().StringVar(&goal, "for", "", "paused, completed or healthy")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long (exit 2)")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often to look")
	return cmd
}
