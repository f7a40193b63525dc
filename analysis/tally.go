package analysis

import (
	"fmt"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// Tally counts a step's measurements by result.
type Tally struct {
	Passed, Failed, Inconclusive int32
}

// Add counts one more measurement.
func (t Tally) Add(r lanesv1alpha1.Result) Tally {
	switch r {
	case lanesv1alpha1.ResultPassed:
		t.Passed++
	case lanesv1alpha1.ResultFailed:
		t.Failed++
	default: // anything not known to pass or fail is inconclusive
		t.Inconclusive++
	}
	return t
}

// Limits are the spec's counts a step is judged by.
type Limits struct {
	// Count is the number of passes a step needs.
	Count int32
	// FailureLimit and InconclusiveLimit are the numbers of failed and inconclusive
	// measurements a step tolerates.
	FailureLimit, InconclusiveLimit int32
}

// LimitsOf reads the limits of a spec, with the CRD's defaults where a field is zero and has one.
func LimitsOf(spec *lanesv1alpha1.LaneAnalysisSpec) Limits {
	l := Limits{Count: spec.Count, FailureLimit: spec.FailureLimit, InconclusiveLimit: 2}
	if l.Count < 1 {
		l.Count = 3
	}
	if spec.InconclusiveLimit != nil {
		l.InconclusiveLimit = *spec.InconclusiveLimit
	}
	return l
}

// StepVerdict is the final verdict of a step, once it has one.
type StepVerdict struct {
	// Done says the step has a verdict; while false, the analysis measures on.
	Done    bool
	Result  lanesv1alpha1.Result
	Message string
}

// Decide returns the step's verdict after the measurements counted in t, the last of which is
// last. A failure is decided first: a step whose failures exceed the limit fails even if it also
// has enough passes. Then too many inconclusive measurements end the step as inconclusive, never
// approved. Only then do enough passes pass it. The message names, for a failure or an
// inconclusive end, the metric and hop of the last measurement that decided it.
func Decide(t Tally, l Limits, last Measurement) StepVerdict {
	counts := fmt.Sprintf("%d passed, %d failed, %d inconclusive", t.Passed, t.Failed, t.Inconclusive)
	switch {
	case t.Failed > l.FailureLimit:
		return StepVerdict{Done: true, Result: lanesv1alpha1.ResultFailed,
			Message: fmt.Sprintf("The lane failed: %s (%s; failure limit %d).", last.Message, counts, l.FailureLimit)}
	case t.Inconclusive > l.InconclusiveLimit:
		return StepVerdict{Done: true, Result: lanesv1alpha1.ResultInconclusive,
			Message: fmt.Sprintf("The analysis is inconclusive, nothing is approved: %s (%s; inconclusive limit %d).", last.Message, counts, l.InconclusiveLimit)}
	case t.Passed >= l.Count:
		return StepVerdict{Done: true, Result: lanesv1alpha1.ResultPassed,
			Message: fmt.Sprintf("The lane passed: %d of %d required measurements passed (%s).", t.Passed, l.Count, counts)}
	}
	return StepVerdict{}
}
