//go:build e2e

package e2e

import (
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// TestTrafficIstioEastWest (scenario d): the lane A -> B -> C on Istio, hop to hop through
// istiod's xDS and proxyless gRPC, A and C released. Two steady request loops run through every
// transition, one with the lane header and one without, and none of their requests may fail:
//   - lane requests answer A[gray] -> B[base] -> C[gray], the others all base;
//   - when C's canary turns not Ready, lane requests reach C's base; when it is Ready again, C's
//     canary (the readiness transitions are repeated to measure how fast the lane follows);
//   - in C's last batch (both pods on the new version, no Ready base pod) requests without the
//     lane header still succeed (they reach C's canary, the only pods there are);
//   - after approval everything answers base from the new versions.
func TestTrafficIstioEastWest(t *testing.T) {
	ns := trafficScenario(t)
	meshLane(t, ns, chain[0], meshCases[0])
	a, c := chain[0], chain[2]
	// C's last batch pauses: two pods of two is every pod, but only "100%" skips the pause.
	deployChain(t, ns, "lane", trafficrouting.LabelIstio, map[string][]intstr.IntOrString{
		c: {intstr.FromInt32(1), intstr.FromInt32(2), intstr.FromString("100%")},
	})

	lane, plain, laneLoad, plainLoad := meshLoads(t, ns)

	releaseAC(t, ns, "v1", "v2")
	expectAnswers(t, "A and C released", lane, answer("gray/v2", "base/v1", "gray/v2"))
	expectAnswers(t, "A and C released, without the lane header", plain, allBaseV1)
	checkTrace(t, ns, "lane", traceLine("gray", "base", "gray"))

	// C's canary loses readiness and gets it back, ten times: the lane follows each way.
	canary := readyPodsWithImage(t.Context(), t, ns, c, demoImage("v2"))[0]
	var toBase, toLane []time.Duration
	for i := range 10 {
		setPodReady(t, &canary, false)
		took, err := framework.WaitForAnswers(t.Context(), stepTimeout, "lane requests to reach C's base", lane, 1, func(s string) bool { return s == answer("gray/v2", "base/v1", "base/v1") })
		if err != nil {
			t.Fatal(err)
		}
		toBase = append(toBase, took)
		if i == 0 {
			checkTrace(t, ns, "lane", traceLine("gray", "base", "base"))
		}
		setPodReady(t, &canary, true)
		took, err = framework.WaitForAnswers(t.Context(), stepTimeout, "lane requests to reach C's canary again", lane, 1, func(s string) bool { return s == answer("gray/v2", "base/v1", "gray/v2") })
		if err != nil {
			t.Fatal(err)
		}
		toLane = append(toLane, took)
	}
	t.Logf("lane follows C's canary: not Ready -> lane requests at C's base p50 %s p99 %s; Ready -> at C's canary p50 %s p99 %s (10 each, request every 20 ms)",
		pct(toBase, 50), pct(toBase, 99), pct(toLane, 50), pct(toLane, 99))
	expectAnswers(t, "C's canary Ready again", lane, answer("gray/v2", "base/v1", "gray/v2"))

	// C's last batch: both pods on v2, no Ready base pod.
	approve(t, ns, c)
	waitPaused(t, ns, 2, map[string]map[string]int{c: {demoImage("v2"): 2}})
	expectAnswers(t, "C's last batch, lane requests", lane, answer("gray/v2", "base/v1", "gray/v2"))
	expectAnswers(t, "C's last batch, requests without the lane header reach C's only pods", plain, answer("base/v1", "base/v1", "gray/v2"))
	checkTrace(t, ns, "lane", traceLine("gray", "base", "gray"))

	approve(t, ns, a, c)
	waitCompleted(t, ns, a, c)
	expectAnswers(t, "after approval, with the lane header", lane, allBaseV2)
	expectAnswers(t, "after approval, without it", plain, allBaseV2)
	checkTrace(t, ns, "lane", traceLine("base", "base", "base"))

	laneLoad.CheckNoFailures(t, 200)
	plainLoad.CheckNoFailures(t, 200)
}

// pct returns the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (p*len(s) + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1].Round(time.Millisecond)
}

// checkTrace checks that `kubectl lanes trace` says what the requests answered: the same hops
// in the same lanes.
func checkTrace(t *testing.T, ns, lane, want string) {
	t.Helper()
	out, _, code := lanes(t, ns, "trace", lane, "--chain", strings.Join(chain, ","))
	if code != 0 || strings.TrimSpace(out) != want {
		t.Errorf("kubectl lanes trace %s says\n%s\nbut the requests answer %q", lane, out, want)
	}
}
