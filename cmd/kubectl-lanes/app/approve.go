package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// ApproveOptions are the inputs of `kubectl lanes approve`.
type ApproveOptions struct {
	// Members limits the approval to these member Rollouts (none: every paused member).
	Members []string

	lane    string
	streams genericiooptions.IOStreams
	getter  ClientGetter
}

func newApproveCommand(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &ApproveOptions{streams: streams, getter: getter}
	cmd := &cobra.Command{
		Use:     "approve LANE [--member NAME]...",
		Short:   "Approve every member paused at a step (StepPaused); others are reported, not forced",
		Example: "  kubectl lanes approve mse-traffic\n  kubectl lanes approve mse-traffic --member rollout-a",
		Args:    exactlyOneLane,
		RunE:    runE(o),
	}
	cmd.Flags().StringArrayVar(&o.Members, "member", nil, "approve only this member Rollout (repeatable)")
	return cmd
}

// Complete takes the lane's name.
func (o *ApproveOptions) Complete(args []string) error {
	o.lane = args[0]
	return nil
}

// Validate has nothing to check before the lane is read: whether each --member belongs to the
// lane is checked in Run.
func (o *ApproveOptions) Validate() error { return nil }

// Run approves each chosen member that is paused, with laneops.Approve, and reports the others.
func (o *ApproveOptions) Run(ctx context.Context) error {
	c, st, err := connectLane(ctx, o.streams, o.getter, o.lane)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, m := range st.Members {
		known[m.Rollout.Name] = true
	}
	for _, name := range o.Members {
		if !known[name] {
			return fmt.Errorf("%s is not a member of lane %s (members: %s)", name, o.lane, strings.Join(memberNames(st), ", "))
		}
	}
	approved := 0
	for _, m := range st.Members {
		if len(o.Members) > 0 && !slices.Contains(o.Members, m.Rollout.Name) {
			continue
		}
		if m.StepState() != rolloutsv1beta1.CanaryStepStatePaused {
			fmt.Fprintf(o.streams.Out, "%s: not approved, it is not paused (phase %s, state %s)\n", m.Rollout.Name, orDash(string(m.Rollout.Status.Phase)), orDash(string(m.StepState())))
			continue
		}
		step := m.Rollout.Status.CanaryStatus.CurrentStepIndex
		if err := laneops.Approve(ctx, c, m.Rollout); err != nil {
			return fmt.Errorf("approve %s: %w", m.Rollout.Name, err)
		}
		approved++
		fmt.Fprintf(o.streams.Out, "%s: approved step %d\n", m.Rollout.Name, step)
	}
	if approved == 0 {
		if len(o.Members) > 0 {
			return fmt.Errorf("nothing approved: none of %s is paused", strings.Join(o.Members, ", "))
		}
		return fmt.Errorf("nothing approved: no member of lane %s is paused", o.lane)
	}
	return nil
}

func memberNames(st *laneops.LaneState) []string {
	var out []string
	for _, m := range st.Members {
		out = append(out, m.Rollout.Name)
	}
	return out
}
