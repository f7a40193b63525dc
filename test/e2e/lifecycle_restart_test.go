//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The restart scenarios stop and start a component every scenario shares (Kruise's manager, the
// API server): they do not call t.Parallel, so no other scenario runs meanwhile.

// laneWithAC is the Istio lane of the demo chain, A and C released and paused at their first
// batch, with real traffic: the mesh senders to A with and without the lane header and their
// steady request loops (checked by the caller). It returns once lane requests answer
// A[gray] -> B[base] -> C[gray] and the lane routes of A and C are in place.
func laneWithAC(t *testing.T) (ns string, lane, plain framework.Sender, laneLoad, plainLoad *framework.Load) {
	t.Helper()
	ns = trafficScenario(t)
	meshLane(t, ns, chain[0], meshCases[0])
	deployChain(t, ns, "lane", trafficrouting.LabelIstio, nil)
	lane, plain, laneLoad, plainLoad = meshLoads(t, ns)
	releaseAC(t, ns, "v1", "v2")
	expectAnswers(t, "A and C released", lane, answer("gray/v2", "base/v1", "gray/v2"))
	waitLaneRoutes(t, ns, "lane routes for A and C", meshCases[0], map[string]bool{chain[0]: true, chain[2]: true})
	return ns, lane, plain, laneLoad, plainLoad
}

// finishAC approves A and C to completion and checks that the lane converged: everything answers
// base from the new versions, no lane route is left, and no pod says gray.
func finishAC(t *testing.T, ns string, lane, plain framework.Sender) {
	t.Helper()
	approve(t, ns, chain[0], chain[2])
	waitCompleted(t, ns, chain[0], chain[2])
	expectAnswers(t, "after approval, with the lane header", lane, allBaseV2)
	expectAnswers(t, "after approval, without it", plain, allBaseV2)
	waitLaneRoutes(t, ns, "no lane route after the release", meshCases[0], map[string]bool{})
	pods := &corev1.PodList{}
	if err := cluster.Client.List(t.Context(), pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp.IsZero() && p.Labels[trafficrouting.LabelIstio] == "gray" {
			t.Errorf("pod %s still says gray after the release", p.Name)
		}
	}
}

// TestLifecycleKruiseRestart: Kruise's manager is stopped and started again while the lane is
// open (A and C paused at their first batch, canaries labelled, lane routes and the canary
// Ingress in place). A guard watches the lane from before the stop until Kruise has been back for
// a while: no canary or stable pod loses its label, no pod is deleted, no lane route or canary
// Ingress is lost or changed. Lane requests reach A's and C's canaries while Kruise is down and
// after it is back; then the release continues (approve -> completion) and the lane converges.
// No request of the two steady loops fails throughout.
func TestLifecycleKruiseRestart(t *testing.T) {
	ns, lane, plain, laneLoad, plainLoad := laneWithAC(t)
	laneAnswer := answer("gray/v2", "base/v1", "gray/v2")

	guard := guardLane(t, ns)
	start := time.Now()
	if err := cluster.RestartKruise(t.Context(), func() error {
		return answersWhileDown(t.Context(), "Kruise stopped", lane, laneAnswer)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kruise stopped and ready again in %s", time.Since(start).Round(100*time.Millisecond))
	// A restarted controller resyncs every object it owns; give it time to do so while watched.
	settle(t, 5*time.Second)
	expectAnswers(t, "Kruise back", lane, laneAnswer)
	expectAnswers(t, "Kruise back, without the lane header", plain, allBaseV1)
	waitLaneRoutes(t, ns, "lane routes after Kruise's restart", meshCases[0], map[string]bool{chain[0]: true, chain[2]: true})
	guard.check(t, "Kruise restarted")

	finishAC(t, ns, lane, plain)
	laneLoad.CheckNoFailures(t, 200)
	plainLoad.CheckNoFailures(t, 200)
}

// TestLifecycleAPIServerRestart: kube-apiserver is stopped and started again (same address,
// certificates and etcd data) while the lane is open. The data plane does not need it: lane
// requests reach the canaries while it is down. Its clients reconnect by themselves
// (lanes-manager, Kruise, kube-controller-manager, kwok, istiod, the pod runner); a guard that
// resumes its watches from the last resourceVersion sees no label, pod, lane route or canary
// Ingress lost across the restart. A canary pod created right after the restart (C's canary
// deleted, its ReplicaSet makes a new one) is labelled gray when it is created, C's lane route
// comes back with it, and the release then converges. No request of the steady loops fails.
func TestLifecycleAPIServerRestart(t *testing.T) {
	ctx := t.Context()
	ns, lane, plain, laneLoad, plainLoad := laneWithAC(t)
	laneAnswer := answer("gray/v2", "base/v1", "gray/v2")

	guard := guardLane(t, ns)
	start := time.Now()
	if err := cluster.RestartAPIServer(ctx, func() error {
		return answersWhileDown(ctx, "API server stopped", lane, laneAnswer)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server stopped and ready again in %s", time.Since(start).Round(100*time.Millisecond))
	settle(t, 3*time.Second)
	expectAnswers(t, "API server back", lane, laneAnswer)
	waitLaneRoutes(t, ns, "lane routes after the API server's restart", meshCases[0], map[string]bool{chain[0]: true, chain[2]: true})
	guard.check(t, "API server restarted")

	// A canary created right after the restart: watched from before C's canary is deleted, so
	// its first version (what admission made of it) is the one checked.
	c := chain[2]
	old := readyPodsWithImage(ctx, t, ns, c, demoImage("v2"))
	if len(old) != 1 {
		t.Fatalf("C has %d Ready canaries, want 1", len(old))
	}
	created := firstCreated(t, ns, map[string]string{"app": c}, demoImage("v2"), old[0].Name)
	if err := cluster.Client.Delete(ctx, &old[0]); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	select {
	case pod = <-created:
	case <-time.After(stepTimeout):
		t.Fatal("no new canary of C was created after its old one was deleted")
	}
	if got := pod.Labels[trafficrouting.LabelIstio]; got != "gray" {
		t.Errorf("C's canary %s created after the API server's restart has %s=%q at creation, want gray", pod.Name, trafficrouting.LabelIstio, got)
	}
	waitPaused(t, ns, 1, map[string]map[string]int{c: {demoImage("v1"): 1, demoImage("v2"): 1}})
	waitLaneRoutes(t, ns, "C's lane route back with its new canary", meshCases[0], map[string]bool{chain[0]: true, chain[2]: true})
	expectAnswers(t, "C's new canary", lane, laneAnswer)

	finishAC(t, ns, lane, plain)
	laneLoad.CheckNoFailures(t, 200)
	plainLoad.CheckNoFailures(t, 200)
}

// answersWhileDown waits until send gets want 5 times in a row and then 20 more times. It
// returns an error instead of failing the test: it runs while a shared component is stopped, and
// the restart must go on.
func answersWhileDown(ctx context.Context, what string, send framework.Sender, want string) error {
	if _, err := framework.WaitForAnswers(ctx, 15*time.Second, what+": "+want, send, 5, func(b string) bool { return b == want }); err != nil {
		return err
	}
	for _, r := range framework.Sample(ctx, send, 20) {
		if r.Failed() || r.Body != want {
			return fmt.Errorf("%s: after 5 answers %q in a row, got %s", what, want, r)
		}
	}
	return nil
}

// firstCreated watches the pods of selector in ns and delivers, as it was created, the first new
// pod (not named except) running image.
func firstCreated(t *testing.T, ns string, selector map[string]string, image, except string) <-chan *corev1.Pod {
	t.Helper()
	wc, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: framework.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), stepTimeout)
	w, err := wc.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns), client.MatchingLabels(selector))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	out := make(chan *corev1.Pod, 1)
	go func() {
		defer cancel()
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if ok && ev.Type == watch.Added && p.Name != except && p.Spec.Containers[0].Image == image {
				out <- p
				return
			}
		}
	}()
	return out
}

// settle lets d pass with a guard watching (a restarted controller resyncs what it owns): the
// guard, not this wait, is what asserts.
func settle(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-t.Context().Done():
	case <-time.After(d):
	}
}
