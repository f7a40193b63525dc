package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/spf13/cobra"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// StatusOptions are the inputs of `kubectl lanes status`.
type StatusOptions struct {
	Output   string
	Watch    bool
	Interval time.Duration

	lane    string
	streams genericiooptions.IOStreams
	getter  ClientGetter
}

type memberStatus struct {
	Rollout       string `json:"rollout"`
	Workload      string `json:"workload"`
	Style         string `json:"style"`
	Phase         string `json:"phase"`
	Step          string `json:"step"`
	StepState     string `json:"stepState"`
	CanaryReady   int32  `json:"canaryReady"`
	CanaryDesired int32  `json:"canaryDesired"`
	LanePods      int    `json:"lanePods"`
}

type laneStatus struct {
	Lane       string         `json:"lane"`
	Phase      string         `json:"phase"`
	Tag        string         `json:"tag,omitempty"`
	EntryRoute string         `json:"entryRoute"`
	Problem    string         `json:"problem,omitempty"`
	Members    []memberStatus `json:"members"`
	// Analyses are the lane's LaneAnalyses as their status says.
	Analyses []analysisStatus `json:"analyses,omitempty"`
}

func newStatusCommand(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &StatusOptions{streams: streams, getter: getter}
	cmd := &cobra.Command{
		Use:     "status LANE",
		Short:   "One row per member: workload, style, step i/n, step state, canary ready/desired, Ready lane pods",
		Example: "  kubectl lanes status mse-traffic\n  kubectl lanes status mse-traffic -w",
		Args:    exactlyOneLane,
		RunE:    runE(o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json or yaml (default: a table)")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "print the status again each time it changes")
	cmd.Flags().DurationVar(&o.Interval, "interval", 2*time.Second, "how often -w looks for changes")
	return cmd
}

// Complete takes the lane's name.
func (o *StatusOptions) Complete(args []string) error {
	o.lane = args[0]
	return nil
}

// Validate checks the output format and, with -w, the interval.
func (o *StatusOptions) Validate() error {
	if err := validateOutput(o.Output); err != nil {
		return err
	}
	if o.Watch {
		return validateInterval(o.Interval)
	}
	return nil
}

// Run prints the lane's status, and with -w again each time it changes until ctx ends.
func (o *StatusOptions) Run(ctx context.Context) error {
	c, ns, d, err := connect(ctx, o.streams, o.getter)
	if err != nil {
		return err
	}
	var last string
	for {
		s, err := statusOf(ctx, c, ns, o.lane, d)
		if err != nil {
			return err
		}
		var b strings.Builder
		if o.Output != "" {
			err = printData(&b, o.Output, s)
		} else {
			err = printStatus(&b, s)
		}
		if err != nil {
			return err
		}
		if b.String() != last {
			if last != "" {
				fmt.Fprintln(o.streams.Out)
			}
			fmt.Fprint(o.streams.Out, b.String())
			last = b.String()
		}
		if !o.Watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Interval):
		}
	}
}

func statusOf(ctx context.Context, c client.Client, ns, name string, d trafficrouting.Defaults) (*laneStatus, error) {
	st, err := laneops.Load(ctx, c, ns, name, d)
	if err != nil {
		return nil, err
	}
	out := &laneStatus{Lane: name, Phase: string(st.TrafficRouting.Status.Phase), EntryRoute: entryRoute(ctx, c, st.TrafficRouting)}
	if st.Lane != nil {
		out.Tag = st.Lane.Tag
	} else {
		out.Problem = st.LaneErr.Error()
	}
	for _, m := range st.Members {
		r := m.Rollout
		ms := memberStatus{
			Rollout:  r.Name,
			Workload: r.Spec.WorkloadRef.Kind + "/" + r.Spec.WorkloadRef.Name,
			Style:    m.Style(),
			Phase:    string(r.Status.Phase),
			LanePods: m.ReadyLanePods(st.Lane),
		}
		steps := 0
		if r.Spec.Strategy.Canary != nil {
			steps = len(r.Spec.Strategy.Canary.Steps)
		}
		if cs := r.Status.CanaryStatus; cs != nil {
			ms.Step = fmt.Sprintf("%d/%d", cs.CurrentStepIndex, steps)
			ms.StepState = string(cs.CurrentStepState)
			ms.CanaryReady, ms.CanaryDesired = cs.CanaryReadyReplicas, cs.CanaryReplicas
		} else {
			ms.Step = fmt.Sprintf("-/%d", steps)
		}
		out.Members = append(out.Members, ms)
	}
	if out.Analyses, err = analysesOf(ctx, c, ns, name); err != nil {
		return nil, err
	}
	return out, nil
}

// entryRoute describes the lane's entry: whether Kruise has written the canary Ingress.
func entryRoute(ctx context.Context, c client.Client, tr *rolloutsv1alpha1.TrafficRouting) string {
	if len(tr.Spec.ObjectRef) == 0 || tr.Spec.ObjectRef[0].Ingress == nil {
		return "not an ingress entry"
	}
	name := tr.Spec.ObjectRef[0].Ingress.Name + "-canary"
	ing := &networkingv1.Ingress{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: tr.Namespace, Name: name}, ing); err != nil {
		if apierrors.IsNotFound(err) {
			return "no canary Ingress"
		}
		return "unknown: " + err.Error()
	}
	return "Ingress " + name
}

func printStatus(w io.Writer, s *laneStatus) error {
	fmt.Fprintf(w, "Lane %s (tag %s): %s; entry: %s\n", s.Lane, orDash(s.Tag), orDash(s.Phase), s.EntryRoute)
	if s.Problem != "" {
		fmt.Fprintf(w, "Problem: %s\n", s.Problem)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tWORKLOAD\tSTYLE\tPHASE\tSTEP\tSTATE\tCANARY\tLANE PODS")
	for _, m := range s.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\n", m.Rollout, m.Workload, m.Style, orDash(m.Phase), m.Step, orDash(m.StepState), m.CanaryReady, m.CanaryDesired, m.LanePods)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printAnalyses(w, s.Analyses)
}
