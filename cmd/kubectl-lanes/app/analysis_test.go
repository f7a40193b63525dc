package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

func TestStatusPrintsTheAnalysis(t *testing.T) {
	s := &laneStatus{Lane: "mse-traffic", Tag: "gray", Phase: "Healthy", EntryRoute: "Ingress a-canary",
		Analyses: []analysisStatus{{
			Name: "mse-traffic", Phase: "Failed", Step: 1, Measurement: 2, Passed: 1, Failed: 1,
			Verdict: "Failed: The lane failed: metric error-ratio at hop spring-cloud-a (Rollout rollout-a): the value 0.3 is above the maximum 0.05.",
			Metrics: []lanesv1alpha1.MetricStatus{{Name: "error-ratio", Result: lanesv1alpha1.ResultFailed, Hops: []lanesv1alpha1.HopValue{
				{Service: "spring-cloud-a", Rollout: "rollout-a", Value: "0.3", Result: lanesv1alpha1.ResultFailed, Message: "the value 0.3 is above the maximum 0.05"},
				{Service: "spring-cloud-c", Rollout: "rollout-c", Value: "0", Result: lanesv1alpha1.ResultPassed, Message: "within bounds"},
			}}},
		}},
	}
	var b strings.Builder
	if err := printStatus(&b, s); err != nil {
		t.Fatal(err)
	}
	want := `Lane mse-traffic (tag gray): Healthy; entry: Ingress a-canary
MEMBER  WORKLOAD  STYLE  PHASE  STEP  STATE  CANARY  LANE PODS

Analysis mse-traffic: Failed, step 1, measurement 2 (1 passed, 1 failed, 0 inconclusive)
Verdict: Failed: The lane failed: metric error-ratio at hop spring-cloud-a (Rollout rollout-a): the value 0.3 is above the maximum 0.05.
METRIC       HOP             VALUE  BASE  P  VERDICT  WHY
error-ratio  spring-cloud-a  0.3    -     -  Failed   the value 0.3 is above the maximum 0.05
error-ratio  spring-cloud-c  0      -     -  Passed   within bounds
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}
