package analysis

import (
	"math"
	"strings"
	"testing"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

func dec(s string) *lanesv1alpha1.Decimal {
	d := lanesv1alpha1.Decimal(s)
	return &d
}

func TestJudgeThreshold(t *testing.T) {
	for name, c := range map[string]struct {
		value   float64
		th      lanesv1alpha1.Threshold
		want    lanesv1alpha1.Result
		message string
	}{
		"within":            {value: 0.995, th: lanesv1alpha1.Threshold{Min: dec("0.99"), Max: dec("1")}, want: lanesv1alpha1.ResultPassed, message: "within bounds"},
		"on the minimum":    {value: 0.99, th: lanesv1alpha1.Threshold{Min: dec("0.99")}, want: lanesv1alpha1.ResultPassed},
		"on the maximum":    {value: 0.05, th: lanesv1alpha1.Threshold{Max: dec("0.05")}, want: lanesv1alpha1.ResultPassed},
		"below":             {value: 0.7, th: lanesv1alpha1.Threshold{Min: dec("0.99")}, want: lanesv1alpha1.ResultFailed, message: "0.7 is below the minimum 0.99"},
		"above":             {value: 0.3, th: lanesv1alpha1.Threshold{Max: dec("5e-2")}, want: lanesv1alpha1.ResultFailed, message: "0.3 is above the maximum 0.05"},
		"NaN is not a pass": {value: math.NaN(), th: lanesv1alpha1.Threshold{Max: dec("1")}, want: lanesv1alpha1.ResultInconclusive, message: "NaN"},
		"+Inf fails max":    {value: math.Inf(1), th: lanesv1alpha1.Threshold{Max: dec("1")}, want: lanesv1alpha1.ResultFailed},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := JudgeThreshold(c.value, c.th)
			if err != nil {
				t.Fatal(err)
			}
			if got.Result != c.want || !strings.Contains(got.Message, c.message) {
				t.Errorf("JudgeThreshold = %s %q, want %s containing %q", got.Result, got.Message, c.want, c.message)
			}
		})
	}
	for name, th := range map[string]lanesv1alpha1.Threshold{
		"no bound":  {},
		"bad min":   {Min: dec("ninety")},
		"bad max":   {Max: dec("")},
		"NaN bound": {Max: dec("NaN")},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := JudgeThreshold(1, th); err == nil {
				t.Error("no error")
			}
		})
	}
}

// steady returns n samples around v that a rank test can order (no two equal).
func steady(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v + float64(i%5)*v/1000
	}
	return out
}

func TestJudgeComparison(t *testing.T) {
	slower := lanesv1alpha1.Comparison{MaxRatio: dec("1.5"), MannWhitney: &lanesv1alpha1.MannWhitney{
		Confidence: "0.98", Direction: lanesv1alpha1.DirectionIncrease, MinSamples: 8}}
	for name, c := range map[string]struct {
		s       Sides
		c       lanesv1alpha1.Comparison
		want    lanesv1alpha1.Result
		message string
	}{
		"ratio within":         {s: Sides{Lane: 0.11, Base: 0.1}, c: lanesv1alpha1.Comparison{MaxRatio: dec("1.2")}, want: lanesv1alpha1.ResultPassed},
		"ratio above":          {s: Sides{Lane: 0.2, Base: 0.1}, c: lanesv1alpha1.Comparison{MaxRatio: dec("1.2")}, want: lanesv1alpha1.ResultFailed, message: "the ratio 2 is above the maximum 1.2"},
		"ratio below":          {s: Sides{Lane: 0.7, Base: 1}, c: lanesv1alpha1.Comparison{MinRatio: dec("0.98")}, want: lanesv1alpha1.ResultFailed, message: "the ratio 0.7 is below the minimum 0.98"},
		"both zero is ratio 1": {s: Sides{Lane: 0, Base: 0}, c: lanesv1alpha1.Comparison{MaxRatio: dec("1.2")}, want: lanesv1alpha1.ResultPassed},
		"base zero lane not":   {s: Sides{Lane: 0.3, Base: 0}, c: lanesv1alpha1.Comparison{MaxRatio: dec("1.2")}, want: lanesv1alpha1.ResultFailed, message: "+Inf"},
		"difference above":     {s: Sides{Lane: 0.3, Base: 0.01}, c: lanesv1alpha1.Comparison{MaxDifference: dec("0.05")}, want: lanesv1alpha1.ResultFailed, message: "the difference 0.29 is above the maximum 0.05"},
		"difference below":     {s: Sides{Lane: 0.5, Base: 1}, c: lanesv1alpha1.Comparison{MinDifference: dec("-0.1")}, want: lanesv1alpha1.ResultFailed, message: "below the minimum -0.1"},
		"NaN lane":             {s: Sides{Lane: math.NaN(), Base: 1}, c: lanesv1alpha1.Comparison{MaxRatio: dec("1.2")}, want: lanesv1alpha1.ResultInconclusive, message: "NaN"},
		// A canary 30% slower: within the ratio bound, but its samples are all above the base's.
		"slower, ratio passes, test fails": {
			s: Sides{Lane: 0.13, Base: 0.1, LaneSamples: steady(0.13, 20), BaseSamples: steady(0.1, 20)}, c: slower,
			want: lanesv1alpha1.ResultFailed, message: "higher than the base's (Mann-Whitney p = ",
		},
		"faster is not worse when Increase fails": {
			s: Sides{Lane: 0.07, Base: 0.1, LaneSamples: steady(0.07, 20), BaseSamples: steady(0.1, 20)}, c: slower,
			want: lanesv1alpha1.ResultPassed, message: "within bounds and not significantly worse",
		},
		"either direction": {
			s:    Sides{Lane: 0.07, Base: 0.1, LaneSamples: steady(0.07, 20), BaseSamples: steady(0.1, 20)},
			c:    lanesv1alpha1.Comparison{MannWhitney: &lanesv1alpha1.MannWhitney{Direction: lanesv1alpha1.DirectionEither, MinSamples: 8}},
			want: lanesv1alpha1.ResultFailed, message: "lower than the base's",
		},
		"same distribution": {
			s: Sides{Lane: 0.1, Base: 0.1, LaneSamples: steady(0.1, 20), BaseSamples: steady(0.1, 20)}, c: slower,
			want: lanesv1alpha1.ResultPassed,
		},
		"too few samples": {
			s: Sides{Lane: 0.13, Base: 0.1, LaneSamples: steady(0.13, 5), BaseSamples: steady(0.1, 20)}, c: slower,
			want: lanesv1alpha1.ResultInconclusive, message: "5 lane and 20 base samples in the window, fewer than the 8",
		},
		"NaN samples do not count": {
			s: Sides{Lane: 0.13, Base: 0.1, LaneSamples: append(steady(0.13, 4), math.NaN(), math.NaN(), math.NaN(), math.NaN()), BaseSamples: steady(0.1, 20)}, c: slower,
			want: lanesv1alpha1.ResultInconclusive, message: "4 lane and 20 base samples",
		},
		"ratio failure beats missing samples": {
			s: Sides{Lane: 0.3, Base: 0.1}, c: slower,
			want: lanesv1alpha1.ResultFailed, message: "the ratio 3 is above",
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := JudgeComparison(c.s, c.c)
			if err != nil {
				t.Fatal(err)
			}
			if got.Result != c.want || !strings.Contains(got.Message, c.message) {
				t.Errorf("JudgeComparison = %s %q, want %s containing %q", got.Result, got.Message, c.want, c.message)
			}
		})
	}
	for name, c := range map[string]lanesv1alpha1.Comparison{
		"nothing to judge by":     {},
		"bad ratio":               {MaxRatio: dec("x")},
		"confidence too high":     {MannWhitney: &lanesv1alpha1.MannWhitney{Confidence: "1"}},
		"confidence not a number": {MannWhitney: &lanesv1alpha1.MannWhitney{Confidence: "high"}},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := JudgeComparison(Sides{Lane: 1, Base: 1, LaneSamples: steady(1, 10), BaseSamples: steady(1, 10)}, c); err == nil {
				t.Error("no error")
			}
		})
	}
}
