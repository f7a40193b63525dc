package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// TraceOptions are the inputs of `kubectl lanes trace`.
type TraceOptions struct {
	// Chain is the call chain in order, by workload or Rollout name (none: the members).
	Chain  []string
	Output string

	lane    string
	streams genericiooptions.IOStreams
	getter  ClientGetter
}

type hop struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Ready   int    `json:"readyLanePods"`
}

func newTraceCommand(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &TraceOptions{streams: streams, getter: getter}
	cmd := &cobra.Command{
		Use:     "trace LANE [--chain A,B,C]",
		Short:   "The path the lane takes now, e.g. A[gray] -> B[base] -> C[gray], from each hop's Ready lane pods",
		Example: "  kubectl lanes trace mse-traffic --chain spring-cloud-a,spring-cloud-b,spring-cloud-c",
		Args:    exactlyOneLane,
		RunE:    runE(o),
	}
	cmd.Flags().StringSliceVar(&o.Chain, "chain", nil, "the call chain in order, by workload or Rollout name (default: the members)")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json or yaml (default: one line)")
	return cmd
}

// Complete takes the lane's name.
func (o *TraceOptions) Complete(args []string) error {
	o.lane = args[0]
	return nil
}

// Validate checks the output format.
func (o *TraceOptions) Validate() error { return validateOutput(o.Output) }

// Run reads the lane and prints the path it takes now.
func (o *TraceOptions) Run(ctx context.Context) error {
	_, st, err := connectLane(ctx, o.streams, o.getter, o.lane)
	if err != nil {
		return err
	}
	if st.Lane == nil {
		return fmt.Errorf("lane %s cannot be traced: %w", o.lane, st.LaneErr)
	}
	hops := traceOf(st, o.Chain)
	if o.Output != "" {
		return printData(o.streams.Out, o.Output, hops)
	}
	fmt.Fprintln(o.streams.Out, formatTrace(hops))
	return nil
}

// traceOf returns the path the lane takes now: each hop is the lane tag where the member has Ready
// pods with the lane's labels, else base.
func traceOf(st *laneops.LaneState, chain []string) []hop {
	byName := map[string]laneops.Member{}
	for _, m := range st.Members {
		byName[m.Rollout.Name] = m
		byName[m.Rollout.Spec.WorkloadRef.Name] = m
	}
	if len(chain) == 0 {
		for _, m := range st.Members {
			chain = append(chain, m.Rollout.Spec.WorkloadRef.Name)
		}
	}
	var hops []hop
	for _, name := range chain {
		h := hop{Name: name, Version: trafficrouting.BaseTag}
		if m, ok := byName[name]; ok {
			if n := m.ReadyLanePods(st.Lane); n > 0 {
				h.Version, h.Ready = st.Lane.Tag, n
			}
		}
		hops = append(hops, h)
	}
	return hops
}

func formatTrace(hops []hop) string {
	parts := make([]string, 0, len(hops))
	for _, h := range hops {
		parts = append(parts, fmt.Sprintf("%s[%s]", h.Name, h.Version))
	}
	return strings.Join(parts, " -> ")
}
