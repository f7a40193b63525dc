package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"github.com/spf13/cobra"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// printData writes v as JSON or YAML.
func printData(w io.Writer, format string, v any) error {
	var out []byte
	var err error
	switch format {
	case "json":
		out, err = json.MarshalIndent(v, "", "  ")
		out = append(out, '\n')
	case "yaml":
		out, err = yaml.Marshal(v)
	default:
		return fmt.Errorf("output format %q is not supported; use -o json or -o yaml, or no -o for a table", format)
	}
	if err != nil {
		return fmt.Errorf("print: %w", err)
	}
	_, err = w.Write(out)
	return err
}

// ---- list -------------------------------------------------------------------------------------

type laneSummary struct {
	Name    string   `json:"name"`
	Phase   string   `json:"phase"`
	Tag     string   `json:"tag"`
	Header  string   `json:"header"`
	Members []string `json:"members"`
	Problem string   `json:"problem,omitempty"`
}

func newListCommand(streams Streams, getter ClientGetter) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the lanes (TrafficRoutings with members) of the namespace and their phase",
		Example: "  kubectl lanes list -n shop",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, d, err := connect(cmd.Context(), streams, getter)
			if err != nil {
				return err
			}
			trs := &rolloutsv1alpha1.TrafficRoutingList{}
			if err := c.List(cmd.Context(), trs, client.InNamespace(ns)); err != nil {
				return fmt.Errorf("list trafficroutings in %s: %w", ns, err)
			}
			var lanes []laneSummary
			for _, tr := range trs.Items {
				st, err := laneops.Load(cmd.Context(), c, ns, tr.Name, d)
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
			if output != "" {
				return printData(streams.Out, output, lanes)
			}
			if len(lanes) == 0 {
				fmt.Fprintf(streams.Out, "No lanes in namespace %s.\n", ns)
				return nil
			}
			tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LANE\tPHASE\tTAG\tHEADER\tMEMBERS")
			for _, l := range lanes {
				tag := l.Tag
				if l.Problem != "" {
					tag = "<misconfigured>"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, orDash(l.Phase), tag, orDash(l.Header), orDash(strings.Join(l.Members, ",")))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json or yaml (default: a table)")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// connectLane connects and reads one lane.
func connectLane(ctx context.Context, streams Streams, getter ClientGetter, name string) (client.Client, *laneops.LaneState, error) {
	c, ns, d, err := connect(ctx, streams, getter)
	if err != nil {
		return nil, nil, err
	}
	st, err := laneops.Load(ctx, c, ns, name, d)
	if err != nil {
		return nil, nil, err
	}
	return c, st, nil
}

// connect returns the client, the namespace and the lane defaults, and says on the error stream
// where the defaults came from.
func connect(ctx context.Context, streams Streams, getter ClientGetter) (client.Client, string, trafficrouting.Defaults, error) {
	c, err := getter.Client()
	if err != nil {
		return nil, "", trafficrouting.Defaults{}, err
	}
	ns, err := getter.Namespace()
	if err != nil {
		return nil, "", trafficrouting.Defaults{}, err
	}
	d, source, err := getter.LaneDefaults(ctx, c)
	if err != nil {
		return nil, "", trafficrouting.Defaults{}, err
	}
	if streams.ErrOut != nil {
		fmt.Fprintln(streams.ErrOut, source)
	}
	return c, ns, d, nil
}

// ---- status -----------------------------------------------------------------------------------

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

func newStatusCommand(streams Streams, getter ClientGetter) *cobra.Command {
	var output string
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:     "status LANE",
		Short:   "One row per member: workload, style, step i/n, step state, canary ready/desired, Ready lane pods",
		Example: "  kubectl lanes status mse-traffic\n  kubectl lanes status mse-traffic -w",
		Args:    exactlyOneLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, d, err := connect(cmd.Context(), streams, getter)
			if err != nil {
				return err
			}
			var last string
			for {
				s, err := statusOf(cmd.Context(), c, ns, args[0], d)
				if err != nil {
					return err
				}
				var b strings.Builder
				if output != "" {
					err = printData(&b, output, s)
				} else {
					err = printStatus(&b, s)
				}
				if err != nil {
					return err
				}
				if b.String() != last {
					if last != "" {
						fmt.Fprintln(streams.Out)
					}
					fmt.Fprint(streams.Out, b.String())
					last = b.String()
				}
				if !watch {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json or yaml (default: a table)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again each time it changes")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often -w looks for changes")
	return cmd
}

func exactlyOneLane(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return errors.New("name exactly one lane (a TrafficRouting); kubectl lanes list shows them")
	}
	return nil
}

// ---- approve ----------------------------------------------------------------------------------

func newApproveCommand(streams Streams, getter ClientGetter) *cobra.Command {
	var only []string
	cmd := &cobra.Command{
		Use:     "approve LANE [--member NAME]...",
		Short:   "Approve every member paused at a step (StepPaused); others are reported, not forced",
		Example: "  kubectl lanes approve mse-traffic\n  kubectl lanes approve mse-traffic --member rollout-a",
		Args:    exactlyOneLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, st, err := connectLane(cmd.Context(), streams, getter, args[0])
			if err != nil {
				return err
			}
			known := map[string]bool{}
			for _, m := range st.Members {
				known[m.Rollout.Name] = true
			}
			for _, name := range only {
				if !known[name] {
					return fmt.Errorf("%s is not a member of lane %s (members: %s)", name, args[0], strings.Join(memberNames(st), ", "))
				}
			}
			approved := 0
			for _, m := range st.Members {
				if len(only) > 0 && !contains(only, m.Rollout.Name) {
					continue
				}
				if m.StepState() != rolloutsv1beta1.CanaryStepStatePaused {
					fmt.Fprintf(streams.Out, "%s: not approved, it is not paused (phase %s, state %s)\n", m.Rollout.Name, orDash(string(m.Rollout.Status.Phase)), orDash(string(m.StepState())))
					continue
				}
				step := m.Rollout.Status.CanaryStatus.CurrentStepIndex
				if err := laneops.Approve(cmd.Context(), c, m.Rollout); err != nil {
					return fmt.Errorf("approve %s: %w", m.Rollout.Name, err)
				}
				approved++
				fmt.Fprintf(streams.Out, "%s: approved step %d\n", m.Rollout.Name, step)
			}
			if approved == 0 {
				if len(only) > 0 {
					return fmt.Errorf("nothing approved: none of %s is paused", strings.Join(only, ", "))
				}
				return fmt.Errorf("nothing approved: no member of lane %s is paused", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&only, "member", nil, "approve only this member Rollout (repeatable)")
	return cmd
}

func memberNames(st *laneops.LaneState) []string {
	var out []string
	for _, m := range st.Members {
		out = append(out, m.Rollout.Name)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---- trace ------------------------------------------------------------------------------------

type hop struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Ready   int    `json:"readyLanePods"`
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

func newTraceCommand(streams Streams, getter ClientGetter) *cobra.Command {
	var chain []string
	var output string
	cmd := &cobra.Command{
		Use:     "trace LANE [--chain A,B,C]",
		Short:   "The path the lane takes now, e.g. A[gray] -> B[base] -> C[gray], from each hop's Ready lane pods",
		Example: "  kubectl lanes trace mse-traffic --chain spring-cloud-a,spring-cloud-b,spring-cloud-c",
		Args:    exactlyOneLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, st, err := connectLane(cmd.Context(), streams, getter, args[0])
			if err != nil {
				return err
			}
			if st.Lane == nil {
				return fmt.Errorf("lane %s cannot be traced: %w", args[0], st.LaneErr)
			}
			hops := traceOf(st, chain)
			if output != "" {
				return printData(streams.Out, output, hops)
			}
			fmt.Fprintln(streams.Out, formatTrace(hops))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&chain, "chain", nil, "the call chain in order, by workload or Rollout name (default: the members)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json or yaml (default: one line)")
	return cmd
}
