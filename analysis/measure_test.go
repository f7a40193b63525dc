package analysis

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// fakeProm answers rendered queries from maps; a query it does not know is an error, as a
// Prometheus that rejects it would answer.
type fakeProm struct {
	instant map[string]model.Value
	ranges  map[string]model.Value
	err     error // every query fails with it (an unreachable server)
	asked   []string
}

func (f *fakeProm) Query(_ context.Context, q string, _ time.Time, _ ...promv1.Option) (model.Value, promv1.Warnings, error) {
	f.asked = append(f.asked, q)
	if f.err != nil {
		return nil, nil, f.err
	}
	if v, ok := f.instant[q]; ok {
		return v, nil, nil
	}
	return nil, nil, errors.New("bad_data: unknown query")
}

func (f *fakeProm) QueryRange(_ context.Context, q string, _ promv1.Range, _ ...promv1.Option) (model.Value, promv1.Warnings, error) {
	f.asked = append(f.asked, "range "+q)
	if f.err != nil {
		return nil, nil, f.err
	}
	if v, ok := f.ranges[q]; ok {
		return v, nil, nil
	}
	return nil, nil, errors.New("bad_data: unknown query")
}

func vec(v float64) model.Vector { return model.Vector{{Value: model.SampleValue(v)}} }

func series(vs []float64) model.Matrix {
	s := &model.SampleStream{}
	for i, v := range vs {
		s.Values = append(s.Values, model.SamplePair{Timestamp: model.Time(i * 15000), Value: model.SampleValue(v)})
	}
	return model.Matrix{s}
}

var demoLane = Lane{Namespace: "lanes-demo", Name: "mse-traffic", Tag: "gray", Header: "x-mse-tag", Hops: []Hop{
	{Service: "a", Workload: "a", Rollout: "rollout-a", Releasing: true},
	{Service: "b", Workload: "b", Rollout: "rollout-b"},
	{Service: "c", Workload: "c", Rollout: "rollout-c", Releasing: true},
}}

const (
	trafficQ = `sum(increase(req{lane="{{ tag }}"}[{{ interval }}]))`
	errorsQ  = `err{service="{{ service }}",lane="{{ subset }}"}`
	latencyQ = `lat{service="{{ service }}",lane="{{ subset }}"}`
)

func demoSpec() *lanesv1alpha1.LaneAnalysisSpec {
	return &lanesv1alpha1.LaneAnalysisSpec{
		Lane: "mse-traffic", Interval: &metav1.Duration{Duration: time.Minute}, Count: 3,
		Traffic: lanesv1alpha1.TrafficRequirement{Query: trafficQ, MinRequests: 20},
		Metrics: []lanesv1alpha1.Metric{
			{Name: "error-rate", Query: errorsQ, Scope: lanesv1alpha1.ScopeHop, Threshold: &lanesv1alpha1.Threshold{Max: dec("0.05")}},
			{Name: "latency", Query: latencyQ, Scope: lanesv1alpha1.ScopeMember, Comparison: &lanesv1alpha1.Comparison{
				MaxRatio: dec("2"), MannWhitney: &lanesv1alpha1.MannWhitney{Direction: lanesv1alpha1.DirectionIncrease, MinSamples: 8}}},
		},
	}
}

// healthy answers every query of demoSpec with a healthy lane.
func healthy() *fakeProm {
	f := &fakeProm{instant: map[string]model.Value{`sum(increase(req{lane="gray"}[1m]))`: vec(120)}, ranges: map[string]model.Value{}}
	for _, svc := range []string{"a", "b", "c"} {
		for _, subset := range []string{"gray", "base"} {
			f.instant[`err{service="`+svc+`",lane="`+subset+`"}`] = vec(0.01)
			lat := `lat{service="` + svc + `",lane="` + subset + `"}`
			f.instant[lat] = vec(0.1)
			f.ranges[lat] = series(steady(0.1, 20))
		}
	}
	return f
}

func TestMeasure(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for name, c := range map[string]struct {
		prom    func() *fakeProm
		want    lanesv1alpha1.Result
		message string
		metrics []lanesv1alpha1.MetricStatus
	}{
		"healthy lane passes": {
			prom: healthy, want: pass, message: "every metric passed at every hop (120 lane requests)",
			metrics: []lanesv1alpha1.MetricStatus{
				{Name: "error-rate", Result: pass, Hops: []lanesv1alpha1.HopValue{
					{Service: "a", Rollout: "rollout-a", Value: "0.01", Result: pass, Message: "the value 0.01 is within bounds"},
					{Service: "b", Rollout: "rollout-b", Value: "0.01", Result: pass, Message: "the value 0.01 is within bounds"},
					{Service: "c", Rollout: "rollout-c", Value: "0.01", Result: pass, Message: "the value 0.01 is within bounds"},
				}},
				{Name: "latency", Result: pass, Hops: []lanesv1alpha1.HopValue{
					{Service: "a", Rollout: "rollout-a", Value: "0.1", BaseValue: "0.1", PValue: "1", Result: pass, Message: "lane 0.1 against base 0.1: within bounds and not significantly worse (Mann-Whitney p = 1)"},
					{Service: "c", Rollout: "rollout-c", Value: "0.1", BaseValue: "0.1", PValue: "1", Result: pass, Message: "lane 0.1 against base 0.1: within bounds and not significantly worse (Mann-Whitney p = 1)"},
				}},
			},
		},
		"errors at A fail, naming metric and hop": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`err{service="a",lane="gray"}`] = vec(0.3)
				return f
			},
			want: fail, message: "metric error-rate at hop a (Rollout rollout-a): the value 0.3 is above the maximum 0.05",
		},
		"a slower canary fails against base": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`lat{service="c",lane="gray"}`] = vec(0.13)
				f.ranges[`lat{service="c",lane="gray"}`] = series(steady(0.13, 20))
				return f
			},
			want: fail, message: "metric latency at hop c (Rollout rollout-c): the lane's samples are higher than the base's",
		},
		"no lane traffic is inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`sum(increase(req{lane="gray"}[1m]))`] = vec(0)
				return f
			},
			want: inc, message: "0 lane requests in the last 1m, fewer than the 20 a measurement needs",
		},
		"too little lane traffic is inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`sum(increase(req{lane="gray"}[1m]))`] = vec(19)
				return f
			},
			want: inc, message: "19 lane requests",
		},
		"no traffic series is inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`sum(increase(req{lane="gray"}[1m]))`] = model.Vector{}
				return f
			},
			want: inc, message: "returned no series",
		},
		"unreachable Prometheus is inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				f.err = errors.New("dial tcp 127.0.0.1:9090: connect: connection refused")
				return f
			},
			want: inc, message: "lane requests could not be counted: query sum(increase(req{lane=\"gray\"}[1m])): dial tcp",
		},
		"NaN is inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`err{service="b",lane="gray"}`] = vec(math.NaN())
				return f
			},
			want: inc, message: "metric error-rate at hop b (Rollout rollout-b): the value is NaN",
		},
		"a query error is inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				delete(f.instant, `lat{service="a",lane="base"}`)
				return f
			},
			want: inc, message: "metric latency at hop a (Rollout rollout-a): the base query gave no value",
		},
		"several series are inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`err{service="a",lane="gray"}`] = model.Vector{{Value: 0}, {Value: 0}}
				return f
			},
			want: inc, message: "returned 2 series; aggregate it to one",
		},
		"a failure anywhere beats an inconclusive elsewhere": {
			prom: func() *fakeProm {
				f := healthy()
				f.instant[`err{service="a",lane="gray"}`] = vec(math.NaN())
				f.instant[`err{service="c",lane="gray"}`] = vec(0.5)
				return f
			},
			want: fail, message: "metric error-rate at hop c",
		},
		"too few range samples are inconclusive": {
			prom: func() *fakeProm {
				f := healthy()
				f.ranges[`lat{service="a",lane="gray"}`] = series(steady(0.1, 3))
				return f
			},
			want: inc, message: "3 lane and 20 base samples",
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Measure(t.Context(), c.prom(), demoSpec(), demoLane, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.Result != c.want || !strings.Contains(got.Message, c.message) {
				t.Errorf("Measure = %s %q, want %s containing %q", got.Result, got.Message, c.want, c.message)
			}
			if c.metrics != nil {
				if diff := cmp.Diff(c.metrics, got.Metrics); diff != "" {
					t.Errorf("metrics (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestMeasureRefusesBadSpecs(t *testing.T) {
	for name, mutate := range map[string]func(*lanesv1alpha1.LaneAnalysisSpec){
		"unknown variable":       func(s *lanesv1alpha1.LaneAnalysisSpec) { s.Metrics[0].Query = `x{v="{{ version }}"}` },
		"hop variable lane-wide": func(s *lanesv1alpha1.LaneAnalysisSpec) { s.Metrics[0].Scope = lanesv1alpha1.ScopeLane },
		"traffic uses a hop":     func(s *lanesv1alpha1.LaneAnalysisSpec) { s.Traffic.Query = `x{s="{{ service }}"}` },
		"neither judgement":      func(s *lanesv1alpha1.LaneAnalysisSpec) { s.Metrics[0].Threshold = nil },
		"bound not a number":     func(s *lanesv1alpha1.LaneAnalysisSpec) { s.Metrics[0].Threshold.Max = dec("low") },
	} {
		t.Run(name, func(t *testing.T) {
			spec := demoSpec()
			mutate(spec)
			if _, err := Measure(t.Context(), healthy(), spec, demoLane, time.Unix(0, 0)); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestMeasureQueriesTheRangeItIsTold checks the window and step reach the range query.
func TestMeasureQueriesTheRangeItIsTold(t *testing.T) {
	var got []promv1.Range
	q := &rangeRecorder{fakeProm: healthy(), ranges: &got}
	spec := demoSpec()
	spec.Metrics[1].Comparison.MannWhitney.Window = &metav1.Duration{Duration: 10 * time.Minute}
	spec.Metrics[1].Comparison.MannWhitney.Step = &metav1.Duration{Duration: 30 * time.Second}
	now := time.Unix(1700000000, 0)
	if _, err := Measure(t.Context(), q, spec, demoLane, now); err != nil {
		t.Fatal(err)
	}
	want := promv1.Range{Start: now.Add(-10 * time.Minute), End: now, Step: 30 * time.Second}
	if len(got) != 4 { // lane and base at A and C
		t.Fatalf("%d range queries, want 4", len(got))
	}
	for _, r := range got {
		if r != want {
			t.Errorf("range %+v, want %+v", r, want)
		}
	}
}

type rangeRecorder struct {
	*fakeProm
	ranges *[]promv1.Range
}

func (r *rangeRecorder) QueryRange(ctx context.Context, q string, rg promv1.Range, opts ...promv1.Option) (model.Value, promv1.Warnings, error) {
	*r.ranges = append(*r.ranges, rg)
	return r.fakeProm.QueryRange(ctx, q, rg, opts...)
}
