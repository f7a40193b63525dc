package app

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// ListOptions are the inputs of `kubectl lanes list`.
type ListOptions struct {
	Output string

	streams genericiooptions.IOStreams
	getter  ClientGetter
}

type laneSummary struct {
	Name    string   `json:"name"`
	Phase   string   `json:"phase"`
	Tag     string   `json:"tag"`
	Header  string   `json:"header"`
	Members []string `json:"members"`
	Problem string   `json:"problem,omitempty"`
}

func newListCommand(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &ListOptions{streams: streams, getter: getter}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the lanes (TrafficRoutings with members) of the namespace and their phase",
		Example: "  kubectl lanes list -n shop",
		Args:    cobra.NoArgs,
		RunE:    runE(o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json or yaml (default: a table)")
	return cmd
}

// Complete has nothing to take: list has no arguments.
func (o *ListOptions) Complete([]string) error { return nil }

// Validate checks the output format.
func (o *ListOptions) Validate() error { return validateOutput(o.Output) }

// Run lists the namespace's TrafficRoutings, loads each as a lane and prints them.
func (o *ListOptions) Run(ctx context.Context) error {
	c, ns, d, err := connect(ctx, o.streams, o.getter)
	if err != nil {
		return err
	}
	trs := &rolloutsv1alpha1.TrafficRoutingList{}
	if err := c.List(ctx, trs, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("list trafficroutings in %s: %w", ns, err)
	}
	var lanes []laneSummary
	for _, tr := range trs.Items {
		st, err := laneops.Load(ctx, c, ns, tr.Name, d)
		if err != nil {
			return err
		}
		s := laneSummary{Name: tr.Name, Phase: string(tr.Status.Phase)}
		if st.Lane != nil {
			s.Tag, s.Header = st.Lane.Tag, st.Lane.Header
		} else {
			s.Problem = st.LaneErr.Error()
		}
		for _, m := range st.Members {
			s.Members = append(s.Members, m.Rollout.Name)
		}
		lanes = append(lanes, s)
	}
	if o.Output != "" {
		return printData(o.streams.Out, o.Output, lanes)
	}
	if len(lanes) == 0 {
		fmt.Fprintf(o.streams.Out, "No lanes in namespace %s.\n", ns)
		return nil
	}
	tw := tabwriter.NewWriter(o.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tPHASE\tTAG\tHEADER\tMEMBERS")
	for _, l := range lanes {
		tag := l.Tag
		if l.Problem != "" {
			tag = "<misconfigured>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, orDash(l.Phase), tag, orDash(l.Header), orDash(strings.Join(l.Members, ",")))
	}
	return tw.Flush()
}
