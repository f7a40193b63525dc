package analysis

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// exactLimit is the largest combined sample size whose p-value is computed from the exact
// permutation distribution (ties included); larger samples use the normal approximation.
const exactLimit = 50

// MannWhitneyResult is the outcome of a two-sided Mann-Whitney U test of x against y.
type MannWhitneyResult struct {
	// U is the statistic of x: the number of pairs (x_i, y_j) with x_i > y_j, ties counting half.
	U float64
	// Superiority is U / (len(x)·len(y)): the chance that an x is larger than a y, 0.5 when the
	// two do not differ.
	Superiority float64
	// P is the two-sided p-value.
	P float64
	// Exact says P comes from the exact permutation distribution, not the normal approximation.
	Exact bool
}

// MannWhitneyU runs a two-sided Mann-Whitney U (Wilcoxon rank-sum) test of x against y. Ties get
// their average rank. With at most 50 values in all, P is exact: the share of all splits of the
// pooled ranks into groups of len(x) and len(y) whose rank sum lies at least as far from its mean
// as x's (ties included). With more, P comes from the normal approximation with the tie
// correction of the variance and a continuity correction of 0.5. Both samples need at least one
// value, and NaN or infinite values are refused.
func MannWhitneyU(x, y []float64) (MannWhitneyResult, error) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return MannWhitneyResult{}, errors.New("a Mann-Whitney test needs at least one value on each side")
	}
	for _, v := range append(append([]float64(nil), x...), y...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return MannWhitneyResult{}, fmt.Errorf("a Mann-Whitney test cannot rank %v", v)
		}
	}
	ranks, tieTerm := doubledRanks(x, y)
	var r1 int64 // twice the rank sum of x
	for i := range n1 {
		r1 += ranks[i]
	}
	nn := float64(n1) * float64(n2)
	u := float64(r1)/2 - float64(n1)*float64(n1+1)/2
	res := MannWhitneyResult{U: u, Superiority: u / nn}
	if n1+n2 <= exactLimit {
		res.P, res.Exact = exactP(ranks, n1, r1), true
		return res, nil
	}
	res.P = normalP(u, n1, n2, tieTerm)
	return res, nil
}

// normalP is the two-sided p-value of U under the normal approximation, with the variance
// corrected for ties (tieTerm = Σ(t³ - t) over the tie groups) and a continuity correction of 0.5.
func normalP(u float64, n1, n2 int, tieTerm float64) float64 {
	nn := float64(n1) * float64(n2)
	variance := tieVariance(n1, n2, tieTerm)
	if variance <= 0 {
		return 1 // every value is the same: no difference to find
	}
	z := math.Max(0, math.Abs(u-nn/2)-0.5) / math.Sqrt(variance)
	return math.Min(1, math.Erfc(z/math.Sqrt2))
}

// tieVariance is the variance of U under the null hypothesis, corrected for ties.
func tieVariance(n1, n2 int, tieTerm float64) float64 {
	nn, n := float64(n1)*float64(n2), float64(n1+n2)
	return nn / 12 * ((n + 1) - tieTerm/(n*(n-1)))
}

// doubledRanks returns twice the average rank of every value of x then y in the pooled sample
// (integers, since an average rank is a multiple of one half), and Σ(t³ - t) over the tie groups.
func doubledRanks(x, y []float64) (ranks []int64, tieTerm float64) {
	type item struct {
		v   float64
		pos int
	}
	items := make([]item, 0, len(x)+len(y))
	for i, v := range x {
		items = append(items, item{v, i})
	}
	for i, v := range y {
		items = append(items, item{v, len(x) + i})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].v < items[j].v })
	ranks = make([]int64, len(items))
	for i := 0; i < len(items); {
		j := i
		for j < len(items) && items[j].v == items[i].v {
			j++
		}
		// Ranks i+1 … j share their average (i+1+j)/2; doubled, i+1+j.
		for k := i; k < j; k++ {
			ranks[items[k].pos] = int64(i + 1 + j)
		}
		t := float64(j - i)
		tieTerm += t*t*t - t
		i = j
	}
	return ranks, tieTerm
}

// exactP is the two-sided p-value of the doubled rank sum r1 of the first n1 of ranks: the share
// of all n1-subsets of ranks whose doubled rank sum is at least as far from the mean as r1.
func exactP(ranks []int64, n1 int, r1 int64) float64 {
	var total int64
	for _, r := range ranks {
		total += r
	}
	// count[k][s]: the number of k-subsets of the ranks seen so far with doubled sum s.
	count := make([][]float64, n1+1)
	for k := range count {
		count[k] = make([]float64, total+1)
	}
	count[0][0] = 1
	for _, r := range ranks {
		for k := n1; k >= 1; k-- {
			for s := total; s >= r; s-- {
				count[k][s] += count[k-1][s-r]
			}
		}
	}
	// Twice the mean doubled sum is n1·total/len(ranks)·2; compare distances on integers scaled
	// by len(ranks) to stay exact.
	n := int64(len(ranks))
	mean2 := int64(n1) * total // = n · mean
	far := abs64(n*r1 - mean2)
	var hit, all float64
	for s, c := range count[n1] {
		if c == 0 {
			continue
		}
		all += c
		if abs64(n*int64(s)-mean2) >= far {
			hit += c
		}
	}
	return math.Min(1, hit/all)
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
