package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// RollbackOptions are the inputs of `kubectl lanes rollback`.
type RollbackOptions struct {
	lane    string
	streams genericiooptions.IOStreams
	getter  ClientGetter
}

func newRollbackCommand(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &RollbackOptions{streams: streams, getter: getter}
	return &cobra.Command{
		Use:   "rollback LANE",
		Short: "Undo every releasing member: its workload's pod template goes back to the stable revision",
		Long: "rollback does for each member in a release what `kubectl-kruise rollout undo` does: it writes the stable\n" +
			"revision's pod template back into the Deployment, StatefulSet or CloneSet; Kruise then ends the release.",
		Example: "  kubectl lanes rollback mse-traffic && kubectl lanes wait mse-traffic --for=healthy",
		Args:    exactlyOneLane,
		RunE:    runE(o),
	}
}

// Complete takes the lane's name.
func (o *RollbackOptions) Complete(args []string) error {
	o.lane = args[0]
	return nil
}

// Validate has nothing to check: rollback has no flags of its own.
func (o *RollbackOptions) Validate() error { return nil }

// Run rolls every releasing member back with laneops.RollBack and reports each member.
func (o *RollbackOptions) Run(ctx context.Context) error {
	c, st, err := connectLane(ctx, o.streams, o.getter, o.lane)
	if err != nil {
		return err
	}
	undone := 0
	var errs []error
	for _, m := range st.Members {
		if !m.CanRollBack() {
			fmt.Fprintf(o.streams.Out, "%s: nothing to roll back (phase %s)\n", m.Rollout.Name, orDash(string(m.Rollout.Status.Phase)))
			continue
		}
		stable, err := laneops.RollBack(ctx, c, c, m)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Rollout.Name, err))
			continue
		}
		undone++
		fmt.Fprintf(o.streams.Out, "%s: %s rolled back to revision %s\n", m.Rollout.Name, m.Rollout.Spec.WorkloadRef.Kind+"/"+m.Rollout.Spec.WorkloadRef.Name, stable)
	}
	if len(errs) > 0 {
		return fmt.Errorf("rollback incomplete: %w", errors.Join(errs...))
	}
	if undone == 0 {
		return fmt.Errorf("nothing rolled back: no member of lane %s is releasing", o.lane)
	}
	return nil
}
