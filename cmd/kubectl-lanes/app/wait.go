package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// Exit codes of `wait`, for pipelines.
const (
	exitFailed   = 1
	exitTimedOut = 2
)

// WaitOptions are the inputs of `kubectl lanes wait`.
type WaitOptions struct {
	// For is the goal: paused, completed or healthy.
	For      string
	Timeout  time.Duration
	Interval time.Duration

	lane    string
	streams genericiooptions.IOStreams
	getter  ClientGetter
}

func newWaitCommand(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &WaitOptions{streams: streams, getter: getter}
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
		RunE: runE(o),
	}
	cmd.Flags().StringVar(&o.For, "for", "", "paused, completed or healthy")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Minute, "give up after this long (exit 2)")
	cmd.Flags().DurationVar(&o.Interval, "interval", 2*time.Second, "how often to look")
	return cmd
}

// Complete takes the lane's name.
func (o *WaitOptions) Complete(args []string) error {
	o.lane = args[0]
	return nil
}

// Validate checks the goal and the interval.
func (o *WaitOptions) Validate() error {
	switch laneops.Goal(o.For) {
	case laneops.GoalPaused, laneops.GoalCompleted, laneops.GoalHealthy:
		return validateInterval(o.Interval)
	}
	return fmt.Errorf("--for %q: use paused, completed or healthy", o.For)
}

// Run looks at the lane every Interval until laneops.Judge says the goal holds or failed, the
// timeout passes or ctx ends.
func (o *WaitOptions) Run(ctx context.Context) error {
	g := laneops.Goal(o.For)
	c, ns, d, err := connect(ctx, o.streams, o.getter)
	if err != nil {
		return err
	}
	// Reads use the command's context, not the deadline, so a read is never mistaken for a
	// failure because the deadline is near; the deadline is checked between looks.
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	var start laneops.ReleaseStart
	for {
		st, err := laneops.Load(ctx, c, ns, o.lane, d)
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
			return &ExitError{Code: exitFailed, Err: fmt.Errorf("lane %s failed: %s", o.lane, v.Failed)}
		case v.Done:
			fmt.Fprintf(o.streams.Out, "lane %s is %s\n", o.lane, g)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return &ExitError{Code: exitTimedOut, Err: fmt.Errorf("timed out after %s waiting for lane %s to be %s: %s", o.Timeout, o.lane, g, v.NotYet)}
		case <-time.After(o.Interval):
		}
	}
}
