package analysis

import (
	"math"
	"testing"
)

// samplesWithU builds two samples of sizes n1 and n2, without ties, whose U statistic (of x) is u.
func samplesWithU(t *testing.T, n1, n2, u int) (x, y []float64) {
	t.Helper()
	for j := range n2 {
		y = append(y, float64(j))
	}
	left := u
	for i := range n1 {
		c := min(n2, left)
		left -= c
		// c values of y lie below c-0.5; the offset keeps the x values distinct.
		x = append(x, float64(c)-0.5+float64(i)*1e-3)
	}
	if left != 0 {
		t.Fatalf("U=%d is out of reach for %d×%d", u, n1, n2)
	}
	return x, y
}

// TestMannWhitneyCriticalValues checks the exact test against the printed table of critical
// values of U for a two-sided test at α = 0.05: U at the critical value is significant, one more
// is not.
func TestMannWhitneyCriticalValues(t *testing.T) {
	for name, c := range map[string]struct{ n1, n2, crit int }{
		"3x5":   {3, 5, 0},
		"5x5":   {5, 5, 2},
		"6x6":   {6, 6, 5},
		"7x7":   {7, 7, 8},
		"8x8":   {8, 8, 13},
		"10x10": {10, 10, 23},
		"5x10":  {5, 10, 8},
		"20x20": {20, 20, 127},
	} {
		t.Run(name, func(t *testing.T) {
			for _, u := range []int{c.crit, c.crit + 1} {
				x, y := samplesWithU(t, c.n1, c.n2, u)
				got, err := MannWhitneyU(x, y)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Exact || got.U != float64(u) {
					t.Fatalf("U = %v (exact %v), want %d (exact)", got.U, got.Exact, u)
				}
				if significant := got.P <= 0.05; significant != (u == c.crit) {
					t.Errorf("U=%d: p = %.5f, significant at 0.05 = %v, want %v", u, got.P, significant, u == c.crit)
				}
			}
		})
	}
}

func TestMannWhitneyKnownValues(t *testing.T) {
	for name, c := range map[string]struct {
		x, y      []float64
		u, p, sup float64
		exact     bool
		tolerance float64
	}{
		// All of x below all of y: U = 0, p = 2/C(10,5) = 2/252.
		"separated": {x: []float64{1, 2, 3, 4, 5}, y: []float64{6, 7, 8, 9, 10}, u: 0, p: 2.0 / 252, sup: 0, exact: true, tolerance: 1e-12},
		// Mirror image: U = 25, same p.
		"separated reversed": {x: []float64{6, 7, 8, 9, 10}, y: []float64{1, 2, 3, 4, 5}, u: 25, p: 2.0 / 252, sup: 1, exact: true, tolerance: 1e-12},
		// Identical samples: U = n1·n2/2 and p = 1.
		"identical": {x: []float64{1, 2, 3}, y: []float64{1, 2, 3}, u: 4.5, p: 1, sup: 0.5, exact: true, tolerance: 1e-12},
		// One value each: the split {x}{y} is one of 2, both as far from the mean: p = 1.
		"one each": {x: []float64{1}, y: []float64{2}, u: 0, p: 1, sup: 0, exact: true, tolerance: 1e-12},
		// Ties across the samples, counted by hand: x = {1, 2, 2}, y = {2, 3, 3}. Pooled ranks
		// 1, 3, 3, 3, 5.5, 5.5; x's rank sum 7, U = 1. Of the 20 splits, those with a rank sum
		// at most 7 or at least 14: {1,3,3} (3 ways, sum 7) and {3,5.5,5.5} (3 ways, sum 14).
		"ties by hand": {x: []float64{1, 2, 2}, y: []float64{2, 3, 3}, u: 1, p: 6.0 / 20, sup: 1.0 / 9, exact: true, tolerance: 1e-12},
		// Every value the same, normal path: no difference, p = 1.
		"all tied, large": {x: repeat(7, 30), y: repeat(7, 30), u: 450, p: 1, sup: 0.5, exact: false, tolerance: 0},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := MannWhitneyU(c.x, c.y)
			if err != nil {
				t.Fatal(err)
			}
			if got.U != c.u || got.Exact != c.exact || math.Abs(got.Superiority-c.sup) > 1e-12 {
				t.Errorf("U = %v, superiority %v, exact %v; want %v, %v, %v", got.U, got.Superiority, got.Exact, c.u, c.sup, c.exact)
			}
			if math.Abs(got.P-c.p) > c.tolerance {
				t.Errorf("p = %.12f, want %.12f", got.P, c.p)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestMannWhitneyNormalApproximation checks the large-sample path: its p-value agrees with the
// exact one where both can be computed, and its tie-corrected variance is the variance of U over
// every split of a tied pooled sample, counted one by one.
func TestMannWhitneyNormalApproximation(t *testing.T) {
	t.Run("close to exact at 20x20", func(t *testing.T) {
		for _, u := range []int{60, 100, 127, 150, 190} {
			x, y := samplesWithU(t, 20, 20, u)
			exact, err := MannWhitneyU(x, y)
			if err != nil {
				t.Fatal(err)
			}
			approx := normalP(float64(u), 20, 20, 0)
			if math.Abs(approx-exact.P) > 0.005 {
				t.Errorf("U=%d: normal p %.5f, exact p %.5f", u, approx, exact.P)
			}
		}
	})
	t.Run("tie-corrected variance", func(t *testing.T) {
		pooled := []float64{1, 1, 2, 2, 2, 3, 4, 4, 5, 6}
		n1 := 4
		_, tieTerm := doubledRanks(pooled, nil)
		var sum, sumSq, splits float64
		forEachSubset(len(pooled), n1, func(in []bool) {
			var x, y []float64
			for i, v := range pooled {
				if in[i] {
					x = append(x, v)
				} else {
					y = append(y, v)
				}
			}
			r, err := MannWhitneyU(x, y)
			if err != nil {
				t.Fatal(err)
			}
			sum += r.U
			sumSq += r.U * r.U
			splits++
		})
		mean := sum / splits
		got := tieVariance(n1, len(pooled)-n1, tieTerm)
		if want := sumSq/splits - mean*mean; math.Abs(got-want) > 1e-9 {
			t.Errorf("tie-corrected variance %v, variance over all %v splits %v", got, splits, want)
		}
		if math.Abs(mean-float64(n1*(len(pooled)-n1))/2) > 1e-9 {
			t.Errorf("mean U over all splits %v, want n1·n2/2", mean)
		}
	})
	t.Run("large samples take the normal path", func(t *testing.T) {
		x, y := samplesWithU(t, 30, 30, 200)
		got, err := MannWhitneyU(x, y)
		if err != nil {
			t.Fatal(err)
		}
		// z = (|200 - 450| - 0.5) / sqrt(30·30·61/12) = 249.5 / 67.639 = 3.6887; p = erfc(z/√2).
		if want := math.Erfc(249.5 / math.Sqrt(900*61.0/12) / math.Sqrt2); got.Exact || math.Abs(got.P-want) > 1e-12 {
			t.Errorf("p = %v (exact %v), want %v from the normal approximation", got.P, got.Exact, want)
		}
		if got.P > 0.001 || got.P < 0.0001 {
			t.Errorf("p = %v, want about 0.000225", got.P)
		}
	})
}

// forEachSubset calls f with every choice of k of n items.
func forEachSubset(n, k int, f func(in []bool)) {
	in := make([]bool, n)
	var rec func(i, left int)
	rec = func(i, left int) {
		if left == 0 {
			f(in)
			return
		}
		if n-i < left {
			return
		}
		in[i] = true
		rec(i+1, left-1)
		in[i] = false
		rec(i+1, left)
	}
	rec(0, k)
}

func TestMannWhitneyRefusesBadInput(t *testing.T) {
	for name, c := range map[string]struct{ x, y []float64 }{
		"empty x": {nil, []float64{1}},
		"empty y": {[]float64{1}, nil},
		"NaN":     {[]float64{1, math.NaN()}, []float64{1}},
		"Inf":     {[]float64{1}, []float64{math.Inf(1)}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := MannWhitneyU(c.x, c.y); err == nil {
				t.Error("no error")
			}
		})
	}
}
