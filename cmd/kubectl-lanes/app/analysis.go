package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/analysis"
	"github.com/kruise-lanes/kruise-lanes/analysis/controller"
	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// analysisStatus is one LaneAnalysis of a lane as `status` shows it.
type analysisStatus struct {
	Name         string                       `json:"name"`
	Phase        string                       `json:"phase"`
	Step         int32                        `json:"step"`
	Measurement  int32                        `json:"measurement"`
	Passed       int32                        `json:"passed"`
	Failed       int32                        `json:"failed"`
	Inconclusive int32                        `json:"inconclusive"`
	Verdict      string                       `json:"verdict,omitempty"`
	Metrics      []lanesv1alpha1.MetricStatus `json:"metrics,omitempty"`
}

// analysesOf lists the LaneAnalyses of lane; none when the CRD is not installed.
func analysesOf(ctx context.Context, c client.Client, ns, lane string) ([]analysisStatus, error) {
	list := &lanesv1alpha1.LaneAnalysisList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		if meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list lane analyses in %s: %w", ns, err)
	}
	var out []analysisStatus
	for _, la := range list.Items {
		if la.Spec.Lane != lane {
			continue
		}
		s := la.Status
		a := analysisStatus{Name: la.Name, Phase: string(s.Phase), Step: s.CurrentStep, Measurement: s.CurrentMeasurement,
			Passed: s.Passed, Failed: s.Failed, Inconclusive: s.Inconclusive, Metrics: s.Metrics}
		if s.Verdict != nil {
			a.Verdict = string(s.Verdict.Result) + ": " + s.Verdict.Message
		}
		out = append(out, a)
	}
	return out, nil
}

// printAnalyses writes each analysis: a summary line, its verdict, and per metric and hop the
// last value and verdict.
func printAnalyses(w io.Writer, as []analysisStatus) error {
	for _, a := range as {
		fmt.Fprintf(w, "\nAnalysis %s: %s, step %d, measurement %d (%d passed, %d failed, %d inconclusive)\n",
			a.Name, orDash(a.Phase), a.Step, a.Measurement, a.Passed, a.Failed, a.Inconclusive)
		if a.Verdict != "" {
			fmt.Fprintf(w, "Verdict: %s\n", a.Verdict)
		}
		if err := printMetrics(w, a.Metrics); err != nil {
			return err
		}
	}
	return nil
}

// printMetrics writes one row per metric and hop.
func printMetrics(w io.Writer, metrics []lanesv1alpha1.MetricStatus) error {
	if len(metrics) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tHOP\tVALUE\tBASE\tP\tVERDICT\tWHY")
	for _, m := range metrics {
		if len(m.Hops) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%s\t-\n", m.Name, m.Result)
		}
		for _, h := range m.Hops {
			hop := h.Service
			if hop == "" {
				hop = "(lane)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, hop, orDash(h.Value), orDash(h.BaseValue), orDash(h.PValue), h.Result, orDash(h.Message))
		}
	}
	return tw.Flush()
}

// analysisOfLane finds the LaneAnalysis named name, or the lane's only one.
func analysisOfLane(ctx context.Context, c client.Client, ns, lane, name string) (*lanesv1alpha1.LaneAnalysis, error) {
	list := &lanesv1alpha1.LaneAnalysisList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, errors.New("the LaneAnalysis CRD is not installed (the chart's crds/ has it)")
		}
		return nil, fmt.Errorf("list lane analyses in %s: %w", ns, err)
	}
	var found []*lanesv1alpha1.LaneAnalysis
	var names []string
	for i := range list.Items {
		la := &list.Items[i]
		if la.Spec.Lane != lane || (name != "" && la.Name != name) {
			continue
		}
		found = append(found, la)
		names = append(names, la.Name)
	}
	switch {
	case len(found) == 1:
		if found[0].Spec.Prometheus.Timeout == nil {
			found[0].Spec.Prometheus.Timeout = &metav1.Duration{Duration: 10 * time.Second}
		}
		return found[0], nil
	case len(found) == 0 && name != "":
		return nil, fmt.Errorf("no LaneAnalysis %q of lane %s in namespace %s", name, lane, ns)
	case len(found) == 0:
		return nil, fmt.Errorf("lane %s has no LaneAnalysis in namespace %s", lane, ns)
	}
	return nil, fmt.Errorf("lane %s has %d LaneAnalyses (%s): choose one with --analysis", lane, len(found), strings.Join(names, ", "))
}

// measureOnce takes one measurement of la's lane now.
func measureOnce(ctx context.Context, c client.Client, la *lanesv1alpha1.LaneAnalysis, st *laneops.LaneState) (analysis.Measurement, error) {
	lane, err := controller.LaneOf(ctx, c, st)
	if err != nil {
		return analysis.Measurement{}, err
	}
	token, err := controller.BearerToken(ctx, c, la)
	if err != nil {
		return analysis.Measurement{}, err
	}
	q, err := controller.NewPrometheusQuerier(la.Spec.Prometheus, token)
	if err != nil {
		return analysis.Measurement{}, err
	}
	return analysis.Measure(ctx, q, &la.Spec, lane, time.Now())
}
