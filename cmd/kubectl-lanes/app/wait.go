package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"

	"github.com/spf13/cobra"
)

// Exit codes of `wait`, for pipelines.
const (
	exitFailed   = 1
	exitTimedOut = 2
)

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
			g := laneops.Goal(goal)
			if g != laneops.GoalPaused && g != laneops.GoalCompleted && g != laneops.GoalHealthy {
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
			var start laneops.ReleaseStart
			for {
				st, err := laneops.Load(ctx, c, ns, args[0], d)
				switch {
				case errors.Is(err, laneops.ErrLaneNotFound):
					return &ExitError{Code: exitFailed, Err: err}
				case err != nil:
					return err
				}
				if start == nil {
					start = laneops.StartOf(st)
				}
				v := laneops.Judge(st, g, start)
				switch {
				case v.Failed != "":
					return &ExitError{Code: exitFailed, Err: fmt.Errorf("lane %s failed: %s", args[0], v.Failed)}
				case v.Done:
					fmt.Fprintf(streams.Out, "lane %s is %s\n", args[0], g)
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-deadline.C:
					return &ExitError{Code: exitTimedOut, Err: fmt.Errorf("timed out after %s waiting for lane %s to be %s: %s", timeout, args[0], g, v.NotYet)}
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
