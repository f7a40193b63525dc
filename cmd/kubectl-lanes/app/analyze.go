package app

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// AnalyzeOptions are the inputs of `kubectl lanes analyze`.
type AnalyzeOptions struct {
	// Analysis names the LaneAnalysis to measure (empty: the lane's only one).
	Analysis string
	// Prometheus, when set, is queried instead of the analysis's spec.prometheus.address.
	Prometheus string
	// Timeout, when positive, bounds each query instead of spec.prometheus.timeout.
	Timeout time.Duration

	lane    string
	streams genericiooptions.IOStreams
	getter  ClientGetter
}

func newAnalyzeCommand(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &AnalyzeOptions{streams: streams, getter: getter}
	cmd := &cobra.Command{
		Use:   "analyze LANE",
		Short: "Take one measurement of the lane's LaneAnalysis now and print it (a dry run: nothing is approved, rolled back or written)",
		Long: "analyze measures the lane as lanes-manager would at its next interval: the lane's request count, then every metric at\n" +
			"every hop of its scope. It writes nothing: the analysis's status and the Rollouts stay as they are. The exit code\n" +
			"is 0 when the measurement passed, 1 otherwise.",
		Example: "  kubectl lanes analyze mse-traffic\n  kubectl lanes analyze mse-traffic --prometheus http://localhost:9090   # through kubectl port-forward",
		Args:    exactlyOneLane,
		RunE:    runE(o),
	}
	cmd.Flags().StringVar(&o.Analysis, "analysis", "", "the LaneAnalysis to measure (default: the lane's only one)")
	cmd.Flags().StringVar(&o.Prometheus, "prometheus", "", "query this Prometheus instead of spec.prometheus.address (e.g. a port-forward)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 0, "bound each query by this instead of spec.prometheus.timeout")
	return cmd
}

// Complete takes the lane's name.
func (o *AnalyzeOptions) Complete(args []string) error {
	o.lane = args[0]
	return nil
}

// Validate refuses a negative timeout.
func (o *AnalyzeOptions) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("--timeout %s: use a positive duration, such as 10s", o.Timeout)
	}
	return nil
}

// Run takes one measurement and prints it; it fails unless the measurement passed.
func (o *AnalyzeOptions) Run(ctx context.Context) error {
	c, st, err := connectLane(ctx, o.streams, o.getter, o.lane)
	if err != nil {
		return err
	}
	la, err := analysisOfLane(ctx, c, st.TrafficRouting.Namespace, o.lane, o.Analysis)
	if err != nil {
		return err
	}
	if o.Prometheus != "" {
		la.Spec.Prometheus.Address = o.Prometheus
	}
	if o.Timeout > 0 {
		la.Spec.Prometheus.Timeout = &metav1.Duration{Duration: o.Timeout}
	}
	m, err := measureOnce(ctx, c, la, st)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "Analysis %s of lane %s, measured at %s against %s: %s\n%s\n", la.Name, o.lane,
		time.Now().UTC().Format(time.RFC3339), la.Spec.Prometheus.Address, m.Result, m.Message)
	if err := printMetrics(o.streams.Out, m.Metrics); err != nil {
		return err
	}
	if m.Result != lanesv1alpha1.ResultPassed {
		return fmt.Errorf("the measurement is %s", m.Result)
	}
	return nil
}
