package app

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

func newRollbackCommand(streams Streams, getter ClientGetter) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback LANE",
		Short: "Undo every releasing member: its workload's pod template goes back to the stable revision",
		Long: "rollback does for each member in a release what `kubectl-kruise rollout undo` does: it writes the stable\n" +
			"revision's pod template back into the Deployment, StatefulSet or CloneSet; Kruise then ends the release.",
		Example: "  kubectl lanes rollback mse-traffic && kubectl lanes wait mse-traffic --for=healthy",
		Args:    exactlyOneLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, st, err := connectLane(cmd.Context(), streams, getter, args[0])
			if err != nil {
				return err
			}
			undone := 0
			var errs []error
			for _, m := range st.Members {
				if !m.CanRollBack() {
					fmt.Fprintf(streams.Out, "%s: nothing to roll back (phase %s)\n", m.Rollout.Name, orDash(string(m.Rollout.Status.Phase)))
					continue
				}
				stable, err := laneops.RollBack(cmd.Context(), c, m)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", m.Rollout.Name, err))
					continue
				}
				undone++
				fmt.Fprintf(streams.Out, "%s: %s rolled back to revision %s\n", m.Rollout.Name, m.Rollout.Spec.WorkloadRef.Kind+"/"+m.Rollout.Spec.WorkloadRef.Name, stable)
			}
			if len(errs) > 0 {
				return fmt.Errorf("rollback incomplete: %w", errors.Join(errs...))
			}
			if undone == 0 {
				return fmt.Errorf("nothing rolled back: no member of lane %s is releasing", args[0])
			}
			return nil
		},
	}
}
