//go:build e2e

package e2e

import (
	"testing"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// TestTrafficGAMMA (scenario e): the lane A -> B -> C on a Gateway API mesh (GAMMA): lanes-manager
// writes, per released member, Services <svc>-base and <svc>-gray and an HTTPRoute attached to
// the member's Service; istiod translates those HTTPRoutes for its proxyless gRPC clients. Lane
// requests answer A[gray] -> B[base] -> C[gray], the others all base, until approval; no request
// fails.
func TestTrafficGAMMA(t *testing.T) {
	ns := trafficScenario(t)
	meshLane(t, ns, chain[0], meshCases[1])
	a, c := chain[0], chain[2]
	deployChain(t, ns, "lane", trafficrouting.LabelLanes, nil)

	lane, plain, laneLoad, plainLoad := meshLoads(t, ns)

	releaseAC(t, ns, "v1", "v2")
	expectAnswers(t, "A and C released", lane, answer("gray/v2", "base/v1", "gray/v2"))
	expectAnswers(t, "A and C released, without the lane header", plain, allBaseV1)

	approve(t, ns, a, c)
	waitCompleted(t, ns, a, c)
	expectAnswers(t, "after approval, with the lane header", lane, allBaseV2)
	expectAnswers(t, "after approval, without it", plain, allBaseV2)
	laneLoad.CheckNoFailures(t, 200)
	plainLoad.CheckNoFailures(t, 200)
}
