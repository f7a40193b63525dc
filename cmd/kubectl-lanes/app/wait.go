package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/openkruise/rollouts/api/v1beta1"
	"github.com/spf13/cobra"
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

// releaseStart remembers, per member, the canary revision it was releasing when wait began.
type releaseStart map[string]string

func startOf(st *laneState) releaseStart {
	out := releaseStart{}
	for _, m := range st.Members {
		if cs := m.Rollout.Status.CanaryStatus; cs != nil && m.releasing() && cs.PodTemplateHash != cs.StableRevision {
			out[m.Rollout.Name] = cs.PodTemplateHash
		}
	}
	return out
}

// rolledBack reports whether a member that was releasing revision rev went back to its stable
// revision instead of completing.
func rolledBack(m member, rev string) bool {
	cs := m.Rollout.Status.CanaryStatus
	return rev != "" && cs != nil && cs.StableRevision != "" && cs.PodTemplateHash == cs.StableRevision
}

// judge decides how far the lane is from the goal.
func judge(st *laneState, goal waitGoal, start releaseStart) verdict {
	for _, m := range st.Members {
		switch m.Rollout.Status.Phase {
		case v1beta1.RolloutPhaseDisabled, v1beta1.RolloutPhaseDisabling, v1beta1.RolloutPhaseTerminating:
			return verdict{failed: fmt.Sprintf("member %s is %s", m.Rollout.Name, m.Rollout.Status.Phase)}
		}
		if rolledBack(m, start[m.Rollout.Name]) {
			return verdict{failed: fmt.Sprintf("member %s was rolled back to its stable revision %s", m.Rollout.Name, m.Rollout.Status.CanaryStatus.StableRevision)}
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
			if m.stepState() != v1beta1.CanaryStepStatePaused {
				missing = append(missing, fmt.Sprintf("%s is %s", m.Rollout.Name, orDash(string(m.stepState()))))
			}
		}
		if releasing == 0 {
			return verdict{notYet: "no member is releasing"}
		}
	case goalCompleted, goalHealthy:
		for _, m := range st.Members {
			if m.Rollout.Status.Phase != v1beta1.RolloutPhaseHealthy {
				missing = append(missing, fmt.Sprintf("%s is %s/%s", m.Rollout.Name, orDash(string(m.Rollout.Status.Phase)), orDash(string(m.stepState()))))
			}
		}
		if goal == goalHealthy && st.TrafficRouting.Status.Phase != v1alpha1.TrafficRoutingPhaseHealthy {
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
		Example: "  kubectl lanes wait mse-traffic --for=paused --timeout=10m && kubectl lanes approve mse-traffic\n" +
			"  kubectl lanes wait mse-traffic --for=completed --timeout=30m",
		Args: exactlyOneLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			g := waitGoal(goal)
			if g != goalPaused && g != goalCompleted && g != goalHealthy {
				return fmt.Errorf("--for %q: use paused, completed or healthy", goal)
			}
			c, ns, err := connect(getter)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var start releaseStart
			last := ""
			for {
				st, err := loadLane(ctx, c, ns, args[0])
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					if errors.Is(err, errLaneNotFound) {
						return &ExitError{Code: exitFailed, Err: err}
					}
					return err
				}
				if err == nil {
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
					last = v.notYet
				}
				select {
				case <-ctx.Done():
					if cmd.Context().Err() != nil {
						return cmd.Context().Err()
					}
					return &ExitError{Code: exitTimedOut, Err: fmt.Errorf("timed out after %s waiting for lane %s to be %s: %s", timeout, args[0], g, last)}
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
