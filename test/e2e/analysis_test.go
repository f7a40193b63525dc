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

// analysisRun is what analysisScenario started.
type analysisRun struct {
	ns                  string
	manager             *framework.LanesManager
	prom                *framework.Prometheus
	laneLoad, plainLoad *framework.Load
}

// analysisScenario deploys the chain in an istio lane, starts Prometheus on the namespace and
// steady mesh loads with and without the lane header (stopped by the caller).
func analysisScenario(t *testing.T, extraManagerArgs ...string) analysisRun {
	t.Helper()
	manager := cluster.StartLanesManager(t, append([]string{"--mesh-routes=true"}, extraManagerArgs...)...)
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
	return analysisRun{ns: ns, manager: manager, prom: prom, laneLoad: laneLoad, plainLoad: plainLoad}
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
func analysisEvent(t *testing.T, ns, reason string, want ...string) (message, others string) {
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
	run := analysisScenario(t)
	ns, prom, laneLoad, plainLoad := run.ns, run.prom, run.laneLoad, run.plainLoad
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
	expectEvent(t, ns, corev1.EventTypeNormal, "Approved", "Step 1", "rollout-"+a, "rollout-"+c)
	lane := cluster.MeshSender(t, xdsTarget(ns, chain[0]), map[string]string{"x-mse-tag": "gray"})
	expectAnswers(t, "after the analysis approved the release", lane, allBaseV2)
	laneLoad.CheckNoFailures(t, 100)
	plainLoad.CheckNoFailures(t, 100)
}

// TestAnalysisFailingHopRollsBackLane: A's canary fails 30% of its requests. The analysis fails
// the lane at hop A and rolls the whole lane back: A and C on their stable version, the lane
// closed; status and an Event name the metric and the hop.
func TestAnalysisFailingHopRollsBackLane(t *testing.T) {
	run := analysisScenario(t)
	ns, prom, laneLoad, plainLoad := run.ns, run.prom, run.laneLoad, run.plainLoad
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
	// kubectl lanes status shows the analysis, its verdict and the failing metric at hop A.
	out, _, code := lanes(t, ns, "status", "lane")
	wantExit(t, code, 0, "kubectl lanes status")
	for _, want := range []string{"Analysis " + la.Name, "error-ratio", a} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl lanes status does not show %q:\n%s", want, out)
		}
	}
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
	// Requests without the lane header also reach A's faulty canary while Kruise's partition
	// release has it behind the Service, so neither load is checked for failures.
	laneLoad.Stop()
	plainLoad.Stop()
}

// TestAnalysisSlowerCanaryFailsAgainstBase: A's canary answers 100 ms later than its base. A fixed
// latency threshold of 500 ms passes it, but the lane-against-base comparison (p90 of lane
// requests minus p90 of base requests at the same hop, at most 30 ms) fails it.
func TestAnalysisSlowerCanaryFailsAgainstBase(t *testing.T) {
	run := analysisScenario(t)
	ns, prom, laneLoad, plainLoad := run.ns, run.prom, run.laneLoad, run.plainLoad
	a, c := chain[0], chain[2]
	la := laneAnalysis(ns, prom.URL, 3, 3,
		lanesv1alpha1.Metric{Name: "latency-threshold", Query: latencyQuery, Scope: lanesv1alpha1.ScopeMember,
			Threshold: &lanesv1alpha1.Threshold{Max: ptr.To(lanesv1alpha1.Decimal("0.5"))}},
		lanesv1alpha1.Metric{Name: "latency-vs-base", Query: latencyQuery, Scope: lanesv1alpha1.ScopeMember,
			Comparison: &lanesv1alpha1.Comparison{BaseSubset: "base", MaxDifference: ptr.To(lanesv1alpha1.Decimal("0.03"))}},
	)
	if err := cluster.Client.Create(t.Context(), la); err != nil {
		t.Fatal(err)
	}
	releaseWithEnv(t, ns, a, "v2", map[string]string{"FAULT_DELAY": "100ms"})
	releaseWithEnv(t, ns, c, "v2", nil)
	la = waitAnalysis(t, ns, "to have a verdict", analysisTimeout, func(la *lanesv1alpha1.LaneAnalysis) bool {
		return la.Status.Verdict != nil
	})
	if la.Status.Verdict.Result != lanesv1alpha1.ResultFailed || !strings.Contains(la.Status.Verdict.Message, "latency-vs-base") || !strings.Contains(la.Status.Verdict.Message, "hop "+a) {
		t.Fatalf("want the lane failed by latency-vs-base at hop %s; %s", a, describeAnalysis(la))
	}
	var threshold, comparison lanesv1alpha1.HopValue
	for _, m := range la.Status.Metrics {
		for _, h := range m.Hops {
			if h.Service != a {
				continue
			}
			switch m.Name {
			case "latency-threshold":
				threshold = h
			case "latency-vs-base":
				comparison = h
			}
		}
	}
	if threshold.Result != lanesv1alpha1.ResultPassed {
		t.Errorf("the fixed threshold at hop %s is %s (%s), want Passed: the canary is only slower than its base", a, threshold.Result, threshold.Message)
	}
	if comparison.Result != lanesv1alpha1.ResultFailed || comparison.BaseValue == "" {
		t.Errorf("the comparison at hop %s is %s (lane %s, base %s: %s), want Failed", a, comparison.Result, comparison.Value, comparison.BaseValue, comparison.Message)
	}
	t.Logf("hop %s: p90 lane %s s, base %s s; threshold: %s; comparison: %s", a, comparison.Value, comparison.BaseValue, threshold.Message, comparison.Message)
	expectEvent(t, ns, corev1.EventTypeWarning, "RolledBack", "rollout-"+a, "rollout-"+c)
	laneLoad.Stop()
	plainLoad.CheckNoFailures(t, 100)
}

// TestAnalysisPrometheusStoppedIsInconclusive: Prometheus stops after the first passed
// measurement. Every measurement after is inconclusive; past the limit the step ends
// inconclusive: nothing approved, nothing rolled back, the lane paused, a Warning Event.
func TestAnalysisPrometheusStoppedIsInconclusive(t *testing.T) {
	run := analysisScenario(t)
	ns, prom, laneLoad, plainLoad := run.ns, run.prom, run.laneLoad, run.plainLoad
	a, c := chain[0], chain[2]
	// Inconclusive limit 3: a measurement taken while the lane's routes and scrapes are still
	// catching up after the pause (a hop with no lane request yet: NaN) must not end the step
	// before Prometheus is stopped.
	if err := cluster.Client.Create(t.Context(), laneAnalysis(ns, prom.URL, 10, 3, errorRatioMetric())); err != nil {
		t.Fatal(err)
	}
	releaseAC(t, ns, "v1", "v2")
	waitAnalysis(t, ns, "to pass a measurement", analysisTimeout, func(la *lanesv1alpha1.LaneAnalysis) bool { return la.Status.Passed >= 1 })
	if err := prom.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	la := waitAnalysis(t, ns, "to end inconclusive", analysisTimeout, func(la *lanesv1alpha1.LaneAnalysis) bool { return la.Status.Verdict != nil })
	if la.Status.Phase != lanesv1alpha1.PhaseInconclusive {
		t.Fatalf("want Inconclusive once Prometheus is gone; %s", describeAnalysis(la))
	}
	last := la.Status.History[len(la.Status.History)-1]
	if last.Result != lanesv1alpha1.ResultInconclusive || !strings.Contains(last.Message, "could not be counted") {
		t.Errorf("the last measurement %s: %s; want inconclusive because the lane requests could not be counted", last.Result, last.Message)
	}
	expectEvent(t, ns, corev1.EventTypeWarning, "VerdictInconclusive", "nothing is approved")
	expectEvent(t, ns, corev1.EventTypeWarning, "LeftPaused", "Step 1")
	// The lane stays paused: still at step 1, paused, a while after the verdict.
	time.Sleep(2 * analysisInterval)
	for _, name := range []string{a, c} {
		if _, err := framework.WaitForRollout(t.Context(), cluster.Client, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, 5*time.Second, "to be paused at step 1 still", framework.RolloutPausedAt(1)); err != nil {
			t.Error(err)
		}
	}
	laneLoad.CheckNoFailures(t, 100)
	plainLoad.CheckNoFailures(t, 100)
}

// TestAnalysisLeaderKilledResumes: the leading lanes-manager is killed (SIGKILL) after the first
// passed measurement. The other replica takes the lead, resumes from status (the count so far,
// the same step) and reaches the same verdict: the lane approved.
func TestAnalysisLeaderKilledResumes(t *testing.T) {
	run := analysisScenario(t, "--leader-elect=true")
	ns, prom, laneLoad, plainLoad := run.ns, run.prom, run.laneLoad, run.plainLoad
	second := cluster.StartLanesReplica(t, "--mesh-routes=true")
	a, c := chain[0], chain[2]
	if err := cluster.Client.Create(t.Context(), laneAnalysis(ns, prom.URL, 4, 3, errorRatioMetric())); err != nil {
		t.Fatal(err)
	}
	releaseAC(t, ns, "v1", "v2")
	before := waitAnalysis(t, ns, "to pass a measurement", analysisTimeout, func(la *lanesv1alpha1.LaneAnalysis) bool { return la.Status.Passed >= 1 })
	if leading, err := run.manager.Leading(); err != nil || !leading {
		t.Fatalf("the first replica does not lead (%v, %v); the scenario kills the leader", leading, err)
	}
	if err := run.manager.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := second.WaitLeading(t.Context(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	waitCompleted(t, ns, a, c)
	la := waitAnalysis(t, ns, "to have passed", 30*time.Second, func(la *lanesv1alpha1.LaneAnalysis) bool { return la.Status.Phase == lanesv1alpha1.PhasePassed })
	// One step, its measurements numbered on from before the failover, not restarted.
	var numbers []int32
	for _, h := range la.Status.History {
		if h.Step != 1 {
			t.Errorf("measurement of step %d; only step 1 pauses", h.Step)
		}
		numbers = append(numbers, h.Measurement)
	}
	for i := range numbers {
		if numbers[i] != int32(i+1) {
			t.Errorf("measurement numbers %v, want 1..n: the new leader restarted the count (before the kill: %d measurements)", numbers, before.Status.CurrentMeasurement)
			break
		}
	}
	if la.Status.Passed != 4 {
		t.Errorf("passed %d, want the 4 required; %s", la.Status.Passed, describeAnalysis(la))
	}
	expectEvent(t, ns, corev1.EventTypeNormal, "Approved", "Step 1", "rollout-"+a, "rollout-"+c)
	laneLoad.CheckNoFailures(t, 100)
	plainLoad.CheckNoFailures(t, 100)
}
