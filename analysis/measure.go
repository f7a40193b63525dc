package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// Querier is the part of the Prometheus HTTP API a measurement needs. The client of
// github.com/prometheus/client_golang/api/prometheus/v1 satisfies it; tests plug in fakes.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...promv1.Option) (model.Value, promv1.Warnings, error)
	QueryRange(ctx context.Context, query string, r promv1.Range, opts ...promv1.Option) (model.Value, promv1.Warnings, error)
}

var _ Querier = promv1.API(nil)

// Hop is one member of the lane: a member Rollout, its workload and the Service it serves.
type Hop struct {
	Service, Workload, Rollout string
	// Releasing says the member has a canary in the lane (scope Member covers only these).
	Releasing bool
}

// Lane is what a measurement needs to know about the lane judged.
type Lane struct {
	Namespace, Name, Tag, Header string
	Hops                         []Hop
}

// Measurement is the outcome of one measurement of every metric.
type Measurement struct {
	Result lanesv1alpha1.Result
	// Message is one sentence: for a failure or an inconclusive result, the first metric and hop
	// that failed (or had no data) and why.
	Message string
	// Requests is the number of lane requests the traffic query counted, NaN when it failed.
	Requests float64
	// Metrics are each metric's values and verdicts, in spec order; empty when the traffic query
	// left the measurement inconclusive before any metric ran.
	Metrics []lanesv1alpha1.MetricStatus
}

// Validate reports every template of the spec that cannot be rendered, as one error naming the
// metrics: a spec error, which no measurement can fix.
func Validate(spec *lanesv1alpha1.LaneAnalysisSpec) error {
	var problems []string
	if err := CheckTemplate(spec.Traffic.Query, lanesv1alpha1.ScopeLane); err != nil {
		problems = append(problems, fmt.Sprintf("traffic.query: %v", err))
	}
	for _, m := range spec.Metrics {
		if err := CheckTemplate(m.Query, scopeOf(m)); err != nil {
			problems = append(problems, fmt.Sprintf("metric %s: %v", m.Name, err))
		}
		if (m.Threshold == nil) == (m.Comparison == nil) {
			problems = append(problems, fmt.Sprintf("metric %s: a metric has exactly one of threshold and comparison", m.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the analysis cannot be measured: %s", strings.Join(problems, "; "))
	}
	return nil
}

func scopeOf(m lanesv1alpha1.Metric) lanesv1alpha1.Scope {
	if m.Scope == "" {
		return lanesv1alpha1.ScopeMember
	}
	return m.Scope
}

// durationOr returns d, or def when d is unset or not positive (the CRD's default, for a spec
// that did not pass through the API server).
func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// promDuration writes d as a PromQL duration (whole seconds; "1m" stays readable as "60s").
func promDuration(d time.Duration) string {
	return model.Duration(d.Truncate(time.Second)).String()
}

// Measure takes one measurement at now: first the lane's request count, then every metric at
// every hop of its scope. A query error, an unreachable Prometheus, an empty answer, NaN or too
// little lane traffic makes the measurement inconclusive. The error is a spec error (see
// Validate, or a bound that is not a number); q's failures never are.
func Measure(ctx context.Context, q Querier, spec *lanesv1alpha1.LaneAnalysisSpec, lane Lane, now time.Time) (Measurement, error) {
	if err := Validate(spec); err != nil {
		return Measurement{}, err
	}
	interval := durationOr(spec.Interval, time.Minute)
	base := Vars{Namespace: lane.Namespace, Lane: lane.Name, Tag: lane.Tag, Header: lane.Header,
		Interval: promDuration(interval), Subset: lane.Tag}

	requests, err := instant(ctx, q, spec.Traffic.Query, base, now)
	if err != nil {
		return Measurement{Result: lanesv1alpha1.ResultInconclusive, Requests: math.NaN(),
			Message: fmt.Sprintf("lane requests could not be counted: %v", err)}, nil
	}
	minRequests := max(spec.Traffic.MinRequests, 1)
	if math.IsNaN(requests) || requests < float64(minRequests) {
		return Measurement{Result: lanesv1alpha1.ResultInconclusive, Requests: requests,
			Message: fmt.Sprintf("%s lane requests in the last %s, fewer than the %d a measurement needs", FormatValue(requests), base.Interval, minRequests)}, nil
	}

	m := Measurement{Result: lanesv1alpha1.ResultPassed, Requests: requests}
	var firstFailed, firstInconclusive string
	for _, metric := range spec.Metrics {
		st, err := measureMetric(ctx, q, metric, lane, base, now)
		if err != nil {
			return Measurement{}, fmt.Errorf("metric %s: %w", metric.Name, err)
		}
		m.Metrics = append(m.Metrics, st)
		for _, h := range st.Hops {
			switch {
			case h.Result == lanesv1alpha1.ResultFailed && firstFailed == "":
				firstFailed = describe(metric.Name, h)
			case h.Result == lanesv1alpha1.ResultInconclusive && firstInconclusive == "":
				firstInconclusive = describe(metric.Name, h)
			}
		}
	}
	switch {
	case firstFailed != "":
		m.Result, m.Message = lanesv1alpha1.ResultFailed, firstFailed
	case firstInconclusive != "":
		m.Result, m.Message = lanesv1alpha1.ResultInconclusive, firstInconclusive
	default:
		m.Message = fmt.Sprintf("every metric passed at every hop (%s lane requests)", FormatValue(requests))
	}
	return m, nil
}

// describe names a metric and hop and says what happened there.
func describe(metric string, h lanesv1alpha1.HopValue) string {
	if h.Service == "" && h.Rollout == "" {
		return fmt.Sprintf("metric %s, lane-wide: %s", metric, h.Message)
	}
	return fmt.Sprintf("metric %s at hop %s (Rollout %s): %s", metric, h.Service, h.Rollout, h.Message)
}

// hopsOf lists the hops a metric covers; a lane-wide metric has one hop with no names.
func hopsOf(m lanesv1alpha1.Metric, lane Lane) []Hop {
	switch scopeOf(m) {
	case lanesv1alpha1.ScopeLane:
		return []Hop{{}}
	case lanesv1alpha1.ScopeHop:
		return lane.Hops
	}
	var out []Hop
	for _, h := range lane.Hops {
		if h.Releasing {
			out = append(out, h)
		}
	}
	return out
}

// measureMetric measures one metric at every hop of its scope.
func measureMetric(ctx context.Context, q Querier, metric lanesv1alpha1.Metric, lane Lane, base Vars, now time.Time) (lanesv1alpha1.MetricStatus, error) {
	st := lanesv1alpha1.MetricStatus{Name: metric.Name, Result: lanesv1alpha1.ResultPassed}
	hops := hopsOf(metric, lane)
	if len(hops) == 0 {
		st.Result = lanesv1alpha1.ResultInconclusive
		st.Hops = []lanesv1alpha1.HopValue{{Result: lanesv1alpha1.ResultInconclusive, Message: fmt.Sprintf("the lane has no hop of scope %s to measure", scopeOf(metric))}}
		return st, nil
	}
	for _, hop := range hops {
		vars := base
		vars.Service, vars.Workload, vars.Rollout = hop.Service, hop.Workload, hop.Rollout
		hv, err := measureHop(ctx, q, metric, vars, now)
		if err != nil {
			return st, err
		}
		hv.Service, hv.Rollout = hop.Service, hop.Rollout
		st.Hops = append(st.Hops, hv)
		st.Result = worst(st.Result, hv.Result)
	}
	return st, nil
}

// worst combines two results: Failed over Inconclusive over Passed.
func worst(a, b lanesv1alpha1.Result) lanesv1alpha1.Result {
	rank := map[lanesv1alpha1.Result]int{lanesv1alpha1.ResultPassed: 0, lanesv1alpha1.ResultInconclusive: 1, lanesv1alpha1.ResultFailed: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// measureHop queries and judges one metric at one hop.
func measureHop(ctx context.Context, q Querier, metric lanesv1alpha1.Metric, vars Vars, now time.Time) (lanesv1alpha1.HopValue, error) {
	noData := func(side string, err error) lanesv1alpha1.HopValue {
		return lanesv1alpha1.HopValue{Result: lanesv1alpha1.ResultInconclusive, Message: fmt.Sprintf("the %s query gave no value: %v", side, err)}
	}
	laneValue, err := instant(ctx, q, metric.Query, vars, now)
	if err != nil {
		return noData("lane", err), nil
	}
	if metric.Threshold != nil {
		j, err := JudgeThreshold(laneValue, *metric.Threshold)
		if err != nil {
			return lanesv1alpha1.HopValue{}, err
		}
		return lanesv1alpha1.HopValue{Value: FormatValue(laneValue), Result: j.Result, Message: j.Message}, nil
	}
	c := *metric.Comparison
	baseVars := vars
	baseVars.Subset = c.BaseSubset
	if baseVars.Subset == "" {
		baseVars.Subset = "base"
	}
	baseValue, err := instant(ctx, q, metric.Query, baseVars, now)
	if err != nil {
		hv := noData("base", err)
		hv.Value = FormatValue(laneValue)
		return hv, nil
	}
	s := Sides{Lane: laneValue, Base: baseValue}
	if mw := c.MannWhitney; mw != nil {
		window, step := durationOr(mw.Window, 5*time.Minute), durationOr(mw.Step, 15*time.Second)
		r := promv1.Range{Start: now.Add(-window), End: now, Step: step}
		if s.LaneSamples, err = samples(ctx, q, metric.Query, vars, r); err != nil {
			return noData("lane range", err), nil
		}
		if s.BaseSamples, err = samples(ctx, q, metric.Query, baseVars, r); err != nil {
			return noData("base range", err), nil
		}
	}
	j, err := JudgeComparison(s, c)
	if err != nil {
		return lanesv1alpha1.HopValue{}, err
	}
	hv := lanesv1alpha1.HopValue{Value: FormatValue(laneValue), BaseValue: FormatValue(baseValue), Result: j.Result, Message: j.Message}
	if !math.IsNaN(j.P) {
		hv.PValue = FormatValue(j.P)
	}
	return hv, nil
}

// instant renders tmpl with vars and queries its single value at ts.
func instant(ctx context.Context, q Querier, tmpl string, vars Vars, ts time.Time) (float64, error) {
	query, err := Render(tmpl, vars)
	if err != nil {
		return math.NaN(), err
	}
	v, _, err := q.Query(ctx, query, ts)
	if err != nil {
		return math.NaN(), fmt.Errorf("query %s: %w", query, err)
	}
	switch v := v.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		switch len(v) {
		case 0:
			return math.NaN(), fmt.Errorf("query %s returned no series", query)
		case 1:
			return float64(v[0].Value), nil
		}
		return math.NaN(), fmt.Errorf("query %s returned %d series; aggregate it to one, for example with sum()", query, len(v))
	}
	return math.NaN(), fmt.Errorf("query %s returned a %s, not a single value", query, typeName(v))
}

// samples renders tmpl with vars and queries its values over r.
func samples(ctx context.Context, q Querier, tmpl string, vars Vars, r promv1.Range) ([]float64, error) {
	query, err := Render(tmpl, vars)
	if err != nil {
		return nil, err
	}
	v, _, err := q.QueryRange(ctx, query, r)
	if err != nil {
		return nil, fmt.Errorf("range query %s: %w", query, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("range query %s returned a %s, not a matrix", query, typeName(v))
	}
	switch len(m) {
	case 0:
		return nil, fmt.Errorf("range query %s returned no series", query)
	case 1:
	default:
		return nil, fmt.Errorf("range query %s returned %d series; aggregate it to one, for example with sum()", query, len(m))
	}
	out := make([]float64, 0, len(m[0].Values))
	for _, p := range m[0].Values {
		out = append(out, float64(p.Value))
	}
	return out, nil
}

func typeName(v model.Value) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().String()
}
