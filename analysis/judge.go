package analysis

import (
	"fmt"
	"math"
	"strconv"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// Judgement is the verdict on one metric at one hop, with the sentence that explains it.
type Judgement struct {
	Result  lanesv1alpha1.Result
	Message string
	// P is the Mann-Whitney p-value, NaN when no test ran.
	P float64
}

func passed(msg string, args ...any) Judgement {
	return Judgement{Result: lanesv1alpha1.ResultPassed, Message: fmt.Sprintf(msg, args...), P: math.NaN()}
}

func failed(msg string, args ...any) Judgement {
	return Judgement{Result: lanesv1alpha1.ResultFailed, Message: fmt.Sprintf(msg, args...), P: math.NaN()}
}

func inconclusive(msg string, args ...any) Judgement {
	return Judgement{Result: lanesv1alpha1.ResultInconclusive, Message: fmt.Sprintf(msg, args...), P: math.NaN()}
}

// ParseDecimal reads a Decimal of the spec; field names it in the error.
func ParseDecimal(d lanesv1alpha1.Decimal, field string) (float64, error) {
	v, err := strconv.ParseFloat(string(d), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s is %q, which is not a decimal number", field, d)
	}
	return v, nil
}

// optional parses a bound that may be unset.
func optional(d *lanesv1alpha1.Decimal, field string) (*float64, error) {
	if d == nil {
		return nil, nil
	}
	v, err := ParseDecimal(*d, field)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// FormatValue writes a measured value as status shows it.
func FormatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// JudgeThreshold judges a value against min and max. NaN is inconclusive, never a pass. The error
// is a spec error (a bound that is not a number).
func JudgeThreshold(value float64, t lanesv1alpha1.Threshold) (Judgement, error) {
	lo, err := optional(t.Min, "threshold.min")
	if err != nil {
		return Judgement{}, err
	}
	hi, err := optional(t.Max, "threshold.max")
	if err != nil {
		return Judgement{}, err
	}
	if lo == nil && hi == nil {
		return Judgement{}, fmt.Errorf("a threshold needs min, max or both")
	}
	if math.IsNaN(value) {
		return inconclusive("the value is NaN (no requests to divide by?)"), nil
	}
	v := FormatValue(value)
	switch {
	case lo != nil && value < *lo:
		return failed("the value %s is below the minimum %s", v, FormatValue(*lo)), nil
	case hi != nil && value > *hi:
		return failed("the value %s is above the maximum %s", v, FormatValue(*hi)), nil
	}
	return passed("the value %s is within bounds", v), nil
}

// Sides are the lane's and the base's values of a lane-against-base metric at one hop: the
// current values and, for a Mann-Whitney test, the window's samples.
type Sides struct {
	Lane, Base               float64
	LaneSamples, BaseSamples []float64
}

// ratio is lane/base; both zero is 1 (no difference), only the base zero is +Inf.
func ratio(lane, base float64) float64 {
	switch {
	case base != 0:
		return lane / base
	case lane == 0:
		return 1
	}
	return math.Inf(int(math.Copysign(1, lane)))
}

// JudgeComparison judges lane against base: the ratio and difference bounds on the current
// values, then the Mann-Whitney test on the samples. A definite failure of any check fails the
// hop; otherwise a check without data (NaN, too few samples) makes it inconclusive. The error is
// a spec error.
func JudgeComparison(s Sides, c lanesv1alpha1.Comparison) (Judgement, error) {
	maxRatio, err := optional(c.MaxRatio, "comparison.maxRatio")
	if err != nil {
		return Judgement{}, err
	}
	minRatio, err := optional(c.MinRatio, "comparison.minRatio")
	if err != nil {
		return Judgement{}, err
	}
	maxDiff, err := optional(c.MaxDifference, "comparison.maxDifference")
	if err != nil {
		return Judgement{}, err
	}
	minDiff, err := optional(c.MinDifference, "comparison.minDifference")
	if err != nil {
		return Judgement{}, err
	}
	bounded := maxRatio != nil || minRatio != nil || maxDiff != nil || minDiff != nil
	if !bounded && c.MannWhitney == nil {
		return Judgement{}, fmt.Errorf("a comparison needs a ratio bound, a difference bound or mannWhitney")
	}
	var pending *Judgement // the first inconclusive check, reported if nothing fails
	if bounded {
		if j, ok := judgeBounds(s, maxRatio, minRatio, maxDiff, minDiff); !ok {
			if j.Result == lanesv1alpha1.ResultFailed {
				return j, nil
			}
			pending = &j
		}
	}
	p := math.NaN()
	if c.MannWhitney != nil {
		j, err := judgeMannWhitney(s, *c.MannWhitney)
		if err != nil {
			return Judgement{}, err
		}
		p = j.P
		if j.Result == lanesv1alpha1.ResultFailed {
			return j, nil
		}
		if j.Result == lanesv1alpha1.ResultInconclusive && pending == nil {
			pending = &j
		}
	}
	if pending != nil {
		pending.P = p
		return *pending, nil
	}
	j := passed("lane %s against base %s is within bounds", FormatValue(s.Lane), FormatValue(s.Base))
	if c.MannWhitney != nil {
		j.Message = fmt.Sprintf("lane %s against base %s: within bounds and not significantly worse (Mann-Whitney p = %s)",
			FormatValue(s.Lane), FormatValue(s.Base), FormatValue(p))
	}
	j.P = p
	return j, nil
}

// judgeBounds checks the ratio and difference bounds; ok is false with the failing or
// inconclusive judgement.
func judgeBounds(s Sides, maxRatio, minRatio, maxDiff, minDiff *float64) (Judgement, bool) {
	if math.IsNaN(s.Lane) || math.IsNaN(s.Base) {
		return inconclusive("lane %s against base %s: a NaN cannot be compared", FormatValue(s.Lane), FormatValue(s.Base)), false
	}
	r, d := ratio(s.Lane, s.Base), s.Lane-s.Base
	lane, base := FormatValue(s.Lane), FormatValue(s.Base)
	switch {
	case maxRatio != nil && r > *maxRatio:
		return failed("lane %s against base %s: the ratio %s is above the maximum %s", lane, base, FormatValue(r), FormatValue(*maxRatio)), false
	case minRatio != nil && r < *minRatio:
		return failed("lane %s against base %s: the ratio %s is below the minimum %s", lane, base, FormatValue(r), FormatValue(*minRatio)), false
	case maxDiff != nil && d > *maxDiff:
		return failed("lane %s against base %s: the difference %s is above the maximum %s", lane, base, FormatValue(d), FormatValue(*maxDiff)), false
	case minDiff != nil && d < *minDiff:
		return failed("lane %s against base %s: the difference %s is below the minimum %s", lane, base, FormatValue(d), FormatValue(*minDiff)), false
	}
	return Judgement{}, true
}

// judgeMannWhitney runs the test on the samples and fails the hop when the two differ at the
// confidence level in the direction that counts as worse.
func judgeMannWhitney(s Sides, m lanesv1alpha1.MannWhitney) (Judgement, error) {
	confidence := 0.98
	if m.Confidence != "" {
		c, err := ParseDecimal(m.Confidence, "comparison.mannWhitney.confidence")
		if err != nil {
			return Judgement{}, err
		}
		if c < 0.5 || c > 0.9999 {
			return Judgement{}, fmt.Errorf("comparison.mannWhitney.confidence is %s; it must lie between 0.5 and 0.9999", m.Confidence)
		}
		confidence = c
	}
	minSamples := int(max(m.MinSamples, 3))
	laneN, baseN := countNumbers(s.LaneSamples), countNumbers(s.BaseSamples)
	if laneN < minSamples || baseN < minSamples {
		return inconclusive("%d lane and %d base samples in the window, fewer than the %d each the Mann-Whitney test needs", laneN, baseN, minSamples), nil
	}
	r, err := MannWhitneyU(numbers(s.LaneSamples), numbers(s.BaseSamples))
	if err != nil {
		return inconclusive("the Mann-Whitney test could not run: %v", err), nil
	}
	alpha := 1 - confidence
	higher := r.Superiority > 0.5
	worse := false
	switch m.Direction {
	case lanesv1alpha1.DirectionIncrease:
		worse = higher
	case lanesv1alpha1.DirectionDecrease:
		worse = r.Superiority < 0.5
	default:
		worse = r.Superiority != 0.5
	}
	way := "lower"
	if higher {
		way = "higher"
	}
	if r.P < alpha && worse {
		j := failed("the lane's samples are %s than the base's (Mann-Whitney p = %s < %s, %d lane and %d base samples)",
			way, FormatValue(r.P), FormatValue(alpha), laneN, baseN)
		j.P = r.P
		return j, nil
	}
	j := passed("not significantly worse (Mann-Whitney p = %s)", FormatValue(r.P))
	j.P = r.P
	return j, nil
}

// countNumbers counts the values that are neither NaN nor infinite; numbers keeps only them
// (Prometheus answers NaN for a rate over no requests).
func countNumbers(vs []float64) int { return len(numbers(vs)) }

func numbers(vs []float64) []float64 {
	out := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}
