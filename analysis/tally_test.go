package analysis

import (
	"strings"
	"testing"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

const (
	pass = lanesv1alpha1.ResultPassed
	fail = lanesv1alpha1.ResultFailed
	inc  = lanesv1alpha1.ResultInconclusive
)

func TestDecide(t *testing.T) {
	limits := Limits{Count: 3, FailureLimit: 1, InconclusiveLimit: 2}
	for name, c := range map[string]struct {
		results []lanesv1alpha1.Result
		done    bool
		want    lanesv1alpha1.Result
		message string
	}{
		"nothing yet":            {},
		"two passes go on":       {results: []lanesv1alpha1.Result{pass, pass}},
		"three passes pass":      {results: []lanesv1alpha1.Result{pass, pass, pass}, done: true, want: pass, message: "3 of 3 required measurements passed"},
		"one failure tolerated":  {results: []lanesv1alpha1.Result{fail, pass, pass}},
		"two failures fail":      {results: []lanesv1alpha1.Result{fail, pass, fail}, done: true, want: fail, message: "The lane failed: last sentence"},
		"failure beats passes":   {results: []lanesv1alpha1.Result{pass, pass, fail, fail}, done: true, want: fail},
		"inconclusive tolerated": {results: []lanesv1alpha1.Result{inc, inc, pass, pass}},
		"inconclusive ends":      {results: []lanesv1alpha1.Result{inc, inc, inc}, done: true, want: inc, message: "nothing is approved"},
		// Inconclusive measurements never count towards the passes.
		"inconclusive is no pass":           {results: []lanesv1alpha1.Result{pass, inc, pass, inc}},
		"an unknown result is inconclusive": {results: []lanesv1alpha1.Result{"", "", ""}, done: true, want: inc},
	} {
		t.Run(name, func(t *testing.T) {
			var tally Tally
			for _, r := range c.results {
				tally = tally.Add(r)
			}
			got := Decide(tally, limits, Measurement{Message: "last sentence"})
			if got.Done != c.done || got.Result != c.want || !strings.Contains(got.Message, c.message) {
				t.Errorf("Decide(%+v) = %+v, want done %v %s containing %q", tally, got, c.done, c.want, c.message)
			}
		})
	}
}

func TestLimitsOf(t *testing.T) {
	zero := int32(0)
	for name, c := range map[string]struct {
		spec lanesv1alpha1.LaneAnalysisSpec
		want Limits
	}{
		"defaults":            {spec: lanesv1alpha1.LaneAnalysisSpec{}, want: Limits{Count: 3, FailureLimit: 0, InconclusiveLimit: 2}},
		"explicit zero limit": {spec: lanesv1alpha1.LaneAnalysisSpec{Count: 5, FailureLimit: 1, InconclusiveLimit: &zero}, want: Limits{Count: 5, FailureLimit: 1, InconclusiveLimit: 0}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := LimitsOf(&c.spec); got != c.want {
				t.Errorf("LimitsOf = %+v, want %+v", got, c.want)
			}
		})
	}
}
