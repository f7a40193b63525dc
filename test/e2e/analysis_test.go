//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The analysis scenarios run the A -> B -> C chain of the traffic scenarios with a real
// Prometheus scraping every demo pod each second, and a LaneAnalysis that lanes-manager runs
// against it: no person approves or rolls back anything.

// analysisInterval is the scenarios' measurement interval (and rate window): a few scrapes.
const analysisInterval = 4 * time.Second

// analysisTimeout bounds the wait for a verdict: a few intervals per measurement and step.
const analysisTimeout = 3 * time.Minute

// errorRatioQuery is the share of the hop's lane requests answered 5xx; no 5xx series at all is
// a ratio of 0, no requests at all a NaN (inconclusive).
const errorRatioQuery = `(sum(rate(lane_demo_requests_total{namespace="{{ namespace }}",service="{{ service }}",lane="{{ tag }}",code=~"5.."}[{{ interval }}])) or vector(0))` +
	` / sum(rate(lane_demo_requests_total{namespace="{{ namespace }}",service="{{ service }}",lane="{{ tag }}"}[{{ interval }}]))`

// latencyQuery is the hop's p90 latency of the requests of {{ subset }} (the lane's tag or base).
const latencyQuery = `histogram_quantile(0.9, sum by (le) (rate(lane_demo_request_duration_seconds_bucket{namespace="{{ namespace }}",service="{{ service }}",lane="{{ subset }}"}[{{ interval }}])))`

// laneAnalysis is the scenarios' LaneAnalysis of the lane "lane": lane requests counted over all
// hops, and the given metrics.
func laneAnalysis(ns, prometheusURL string, count, inconclusiveLimit int32, metrics ...lanesv1alpha1.Metric) *lanesv1alpha1.LaneAnalysis {
	return &lanesv1alpha1.LaneAnalysis{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lane"},
		Spec: lanesv1alpha1.LaneAnalysisSpec{
			Lane:              "lane",
			Prometheus:        lanesv1alpha1.PrometheusSource{Address: prometheusURL, Timeout: &metav1.Duration{Duration: 2 * time.Second}},
			Interval:          &metav1.Duration{Duration: analysisInterval},
			Count:             count,
			FailureLimit:      0,
			InconclusiveLimit: ptr.To(inconclusiveLimit),
			Traffic: lanesv1alpha1.TrafficRequirement{
				Query:       `sum(increase(lane_demo_requests_total{namespace="{{ namespace }}",lane="{{ tag }}"}[{{ interval }}]))`,
				MinRequests: 10,
			},
			Metrics:   metrics,
			OnFailure: lanesv1alpha1.FailureActionRollback,
		},
	}
}

// errorRatioMetric fails a hop whose lane requests fail more than 5% of the time.
func errorRatioMetric() lanesv1alpha1.Metric {
	return lanesv1alpha1.Metric{Name: "error-ratio", Query: errorRatioQuery, Scope: lanesv1alpha1.ScopeHop,
		Threshold: &lanesv1alpha1.Threshold{Max: ptr.To(lanesv1alpha1.Decimal("0.05"))}}
}

// analysisScenario deploys the chain in an istio lane, starts Prometheus on the namespace and
// steady mesh loads with and without the lane header, and returns the namespace, Prometheus and
// the loads (stopped by the caller).
func analysisScenario(t *testing.T, extraManagerArgs ...string) (string, *framework.Prometheus, *framework.Load, *framework.Load) {
	t.Helper()
	cluster.StartLanesManager(t, append([]string{"--mesh-routes=true"}, extraManagerArgs...)...)
	ns := cluster.Namespace(t)
	cluster.Istiod(t)
	cluster.RunPods(t, ns)
	prom := cluster.StartPrometheus(t, ns)
	meshLane(t, ns, chain[0], meshCases[0])
	deployChain(t, ns, "lane", trafficrouting.LabelIstio, nil)
	lane := cluster.MeshSender(t, xdsTarget(ns, chain[0]), map[string]string{"x-mse-tag": "gray"})
	plain := cluster.MeshSender(t, xdsTarget(ns, chain[0]), nil)
	expectAnswers(t, "before the release, with the lane header", lane, allBaseV1)
	laneLoad := framework.StartLoad(t, "lane requests", lane, 50*time.Millisecond, 10000, 8*time.Minute)
	plainLoad := framework.StartLoad(t, "requests without the lane header", plain, 50*time.Millisecond, 10000, 8*time.Minute)
	return ns, prom, laneLoad, plainLoad
}

// releaseWithEnv starts a release of hop name at version with extra env on its canary (the
// fault switches FAULT_ERROR_RATIO and FAULT_DELAY).
func releaseWithEnv(t *testing.T, ns, name, version string, env map[string]string) {
	t.Helper()
	releaseVersion(t, ns, name, version)
	if len(env) == 0 {
		return
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := cluster.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		ctr := &d.Spec.Template.Spec.Containers[0]
		for k, v := range env {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: k, Value: v})
		}
		return cluster.Client.Update(t.Context(), d)
	})
	if err != nil {
		t.Fatalf("setting %v on %s: %v", env, name, err)
	}
}

// waitAnalysis waits until the LaneAnalysis satisfies cond and returns it.
func waitAnalysis(t *testing.T, ns, what string, timeout time.Duration, cond func(*lanesv1alpha1.LaneAnalysis) bool) *lanesv1alpha1.LaneAnalysis {
	t.Helper()
	la := &lanesv1alpha1.LaneAnalysis{}
	err := framework.WaitFor(t.Context(), timeout, "the lane analysis "+what, func(ctx context.Context) (bool, error) {
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lane"}, la); err != nil {
			return false, err
		}
		return cond(la), nil
	})
	if err != nil {
		t.Fatalf("%v; status %s", err, describeAnalysis(la))
	}
	return la
}

// describeAnalysis sums a status up for failure messages.
func describeAnalysis(la *lanesv1alpha1.LaneAnalysis) string {
	s := la.Status
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s step %d measurement %d (%d passed, %d failed, %d inconclusive)", s.Phase, s.CurrentStep, s.CurrentMeasurement, s.Passed, s.Failed, s.Inconclusive)
	if s.Verdict != nil {
		fmt.Fprintf(&b, "; verdict %s: %s", s.Verdict.Result, s.Verdict.Message)
	}
	for _, h := range s.History {
		fmt.Fprintf(&b, "\n  step %d #%d %s: %s", h.Step, h.Measurement, h.Result, h.Message)
	}
	return b.String()
}

// analysisEvent returns the first Event of the LaneAnalysis with the given reason whose message
// holds every one of want, or "" and every Event seen.
func analysisEvent(t *testing.T, ns, reason string, want ...string) (string, string) {
	t.Helper()
	events := &corev1.EventList{}
	if err := cluster.Client.List(t.Context(), events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range events.Items {
		if e.InvolvedObject.Kind != "LaneAnalysis" {
			continue
		}
		seen = append(seen, e.Type+" "+e.Reason+": "+e.Message)
		if e.Reason != reason {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(e.Message, w)
		}
		if ok {
			return e.Type + " " + e.Message, ""
		}
	}
	return "", strings.Join(seen, "\n")
}

// expectEvent fails the test unless the LaneAnalysis has an Event of reason holding want.
func expectEvent(t *testing.T, ns, eventType, reason string, want ...string) {
	t.Helper()
	var seen string
	err := framework.WaitFor(t.Context(), 30*time.Second, "an Event "+reason, func(context.Context) (bool, error) {
		var got string
		got, seen = analysisEvent(t, ns, reason, want...)
		return strings.HasPrefix(got, eventType+" "), nil
	})
	if err != nil {
		t.Errorf("no %s Event %s naming %q; the analysis's Events:\n%s", eventType, reason, want, seen)
	}
}

// TestAnalysisHealthyReleaseApproved: A and C are released; the analysis measures the lane's
// error ratio at every hop, passes the paused step and approves both members: the release
// completes with nobody approving.
func TestAnalysisHealthyReleaseApproved(t *testing.T) {
	ns, prom, laneLoad, plainLoad := analysisScenario(t)
	a, c := chain[0], chain[2]
	if err := cluster.Client.Create(t.Context(), laneAnalysis(ns, prom.URL, 2, 2, errorRatioMetric())); err != nil {
		t.Fatal(err)
	}
	releaseAC(t, ns, "v1", "v2")
	waitCompleted(t, ns, a, c)
	la := waitAnalysis(t, ns, "to have passed", 30*time.Second, func(la *lanesv1alpha1.LaneAnalysis) bool {
		return la.Status.Phase == lanesv1alpha1.PhasePassed
	})
	steps := map[int32]int{}
	for _, h := range la.Status.History {
		if h.Result != lanesv1alpha1.ResultPassed && h.Result != lanesv1alpha1.ResultInconclusive {
			t.Errorf("measurement %d of step %d %s: %s", h.Measurement, h.Step, h.Result, h.Message)
		}
		if h.Result == lanesv1alpha1.ResultPassed {
			steps[h.Step]++
		}
	}
	// The second step ("100%") does not pause in Kruise v0.6.2: one step is judged.
	if steps[1] < 2 {
		t.Errorf("passed measurements per step %v, want 2 at step 1; %s", steps, describeAnalysis(la))
	}
	expectEvent(t, ns, corev1.EventTypeNormal, "Approved", "step 1", "rollout-"+a, "rollout-"+c)
	lane := cluster.MeshSender(t, xdsTarget(ns, chain[0]), map[string]string{"x-mse-tag": "gray"})
	expectAnswers(t, "after the analysis approved the release", lane, allBaseV2)
	laneLoad.CheckNoFailures(t, 100)
	plainLoad.CheckNoFailures(t, 100)
}

// TestAnalysisFailingHopRollsBackLane: A's canary fails 30% of its requests. The analysis fails
// the lane at hop A and rolls the whole lane back: A and C on their stable version, the lane
// closed; status and an Event name the metric and the hop.
func TestAnalysisFailingHopRollsBackLane(t *testing.T) {
	ns, prom, laneLoad, plainLoad := analysisScenario(t)
	a, c := chain[0], chain[2]
	if err := cluster.Client.Create(t.Context(), laneAnalysis(ns, prom.URL, 3, 2, errorRatioMetric())); err != nil {
		t.Fatal(err)
	}
	releaseWithEnv(t, ns, a, "v2", map[string]string{"FAULT_ERROR_RATIO": "0.3"})
	releaseWithEnv(t, ns, c, "v2", nil)
	la := waitAnalysis(t, ns, "to fail", analysisTimeout, func(la *lanesv1alpha1.LaneAnalysis) bool {
		return la.Status.Phase == lanesv1alpha1.PhaseFailed || la.Status.Phase == lanesv1alpha1.PhasePassed
	})
	if la.Status.Phase != lanesv1alpha1.PhaseFailed || la.Status.Verdict == nil {
		t.Fatalf("the lane with a failing canary at A was not failed: %s", describeAnalysis(la))
	}
	for _, want := range []string{"error-ratio", "hop " + a, "rollout-" + a} {
		if !strings.Contains(la.Status.Verdict.Message, want) {
			t.Errorf("verdict %q does not name %q", la.Status.Verdict.Message, want)
		}
	}
	expectEvent(t, ns, corev1.EventTypeWarning, "VerdictFailed", "error-ratio", "hop "+a)
	expectEvent(t, ns, corev1.EventTypeWarning, "RolledBack", "rollout-"+a, "rollout-"+c)
	// The whole lane is back on v1 and closed.
	for _, name := range []string{a, c} {
		if err := framework.WaitForReadyPods(t.Context(), cluster.Client, ns, map[string]string{"app": name}, stepTimeout, map[string]int{demoImage("v1"): 2}); err != nil {
			t.Fatal(err)
		}
	}
	err := framework.WaitFor(t.Context(), stepTimeout, "the lane to be closed (TrafficRouting Healthy)", func(ctx context.Context) (bool, error) {
		tr := &rolloutsv1alpha1.TrafficRouting{}
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lane"}, tr); err != nil {
			return false, err
		}
		return tr.Status.Phase == rolloutsv1alpha1.TrafficRoutingPhaseHealthy, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lane := cluster.MeshSender(t, xdsTarget(ns, chain[0]), map[string]string{"x-mse-tag": "gray"})
	expectAnswers(t, "after the rollback, with the lane header", lane, allBaseV1)
	laneLoad.Stop()
	plainLoad.CheckNoFailures(t, 100)
}
