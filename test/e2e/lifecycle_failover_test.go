//go:build e2e

package e2e

import (
	"context"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// totalAdmissions is how many admissions a lanes-manager replica answered, whatever the outcome.
func totalAdmissions(t *testing.T, m *framework.LanesManager) int {
	t.Helper()
	n := 0
	for _, o := range []string{"labelled", "unchanged", "misconfigured", "error"} {
		n += admissions(t, m, o)
	}
	return n
}

// probeAdmission sends the API server a dry-run creation of a copy of pod without its lane labels
// (a pod its ReplicaSet could create next: same owner, template hash and spec) and returns the
// lane labels admission gave the copy, and whether replica m answered the admission (its
// admission count moved; always false for a nil m, a replica that is gone). Nothing is stored.
func probeAdmission(t *testing.T, m *framework.LanesManager, pod *corev1.Pod) (map[string]string, bool) {
	t.Helper()
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, GenerateName: pod.Name + "-probe-",
			Labels: maps.Clone(pod.Labels), Annotations: maps.Clone(pod.Annotations), OwnerReferences: pod.OwnerReferences,
		},
		Spec: *pod.Spec.DeepCopy(),
	}
	probe.Spec.NodeName = ""
	for k := range laneLabelKeys {
		delete(probe.Labels, k)
	}
	delete(probe.Annotations, trafficrouting.ManagedLabelsAnnotation)
	if m == nil {
		if err := cluster.Client.Create(t.Context(), probe, client.DryRunAll); err != nil {
			t.Fatalf("dry-run creation of a copy of %s: %v", pod.Name, err)
		}
		return laneLabelsOf(*probe), false
	}
	before := totalAdmissions(t, m)
	if err := cluster.Client.Create(t.Context(), probe, client.DryRunAll); err != nil {
		t.Fatalf("dry-run creation of a copy of %s: %v", pod.Name, err)
	}
	return laneLabelsOf(*probe), totalAdmissions(t, m) > before
}

// pointWebhook sends admissions to replica m, and waits until m answers them (the API server
// reads its webhook configurations from a watch); dead is true for a replica that was killed: it
// then waits until admissions are no longer answered by anyone, and labelled by no one.
func pointWebhook(t *testing.T, m *framework.LanesManager, sample *corev1.Pod, dead bool) {
	t.Helper()
	if err := cluster.PointLanesWebhookAt(t.Context(), m.WebhookPort); err != nil {
		t.Fatal(err)
	}
	err := framework.WaitFor(t.Context(), 10*time.Second, "the API server to call "+m.Name(), func(context.Context) (bool, error) {
		if dead {
			labels, _ := probeAdmission(t, nil, sample)
			return len(labels) == 0, nil
		}
		_, answered := probeAdmission(t, m, sample)
		return answered, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// replaceCanary deletes the canary pod and returns the one its ReplicaSet creates instead, as it
// was created (before anything patched it).
func replaceCanary(t *testing.T, old *corev1.Pod) *corev1.Pod {
	t.Helper()
	created := firstCreated(t, old.Namespace, map[string]string{"app": old.Labels["app"]}, old.Spec.Containers[0].Image, old.Name)
	if err := cluster.Client.Delete(t.Context(), old, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-created:
		return p
	case <-time.After(stepTimeout):
		t.Fatalf("no canary pod replaced %s", old.Name)
	}
	return nil
}

// mustFollow fails the test unless m is running and does not lead.
func mustFollow(t *testing.T, m *framework.LanesManager, when string) {
	t.Helper()
	leading, err := m.Leading()
	if err != nil {
		t.Fatal(err)
	}
	if leading {
		t.Fatalf("%s: %s leads already; the scenario needs it to be a follower here", when, m.Name())
	}
}

// TestLifecycleFailover: two lanes-manager replicas with leader election, the chart's layout
// (one certificate Secret, one webhook configuration, one Lease). A partition-style Deployment in a
// lane goes through three batches (1, 2, all of 4 pods):
//   - the follower, started while the lane is open and sent admissions the moment its /readyz
//     first passes, labels a canary at admission (its caches must be warm by then: a cold cache
//     that admits the pod unlabelled fails here);
//   - the leader is killed (SIGKILL: its Lease is not released). While no replica leads, a
//     canary created through the follower's webhook is labelled at creation; a canary created
//     while the webhook still points at the dead leader (a Service endpoint not yet removed;
//     failurePolicy Ignore) is created unlabelled and is labelled by the new leader's reconciler
//     within 5 s of it leading;
//   - the next batch, under the new leader, is labelled at creation, and after completion no pod
//     keeps a lane label.
func TestLifecycleFailover(t *testing.T) {
	ctx := t.Context()
	ns := cluster.Namespace(t)
	m := newLaneMember(deployment(ns, "f", "example.com/f:v1", 4), 4, 1, 3)
	m.rollout.Spec.Strategy.Canary.Steps = []rolloutsv1beta1.CanaryStep{
		{Replicas: ptr.To(intstr.FromInt32(1))}, {Replicas: ptr.To(intstr.FromInt32(2))}, {Replicas: ptr.To(intstr.FromString("100%"))},
	}
	first := cluster.StartLanesManager(t, "--leader-elect=true")
	if _, err := first.WaitLeading(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	m.create(t)
	pods := m.release(t)
	m.assertLaneLabels(t, pods, true)
	canary := &pods[m.newImage][0]

	// The follower serves admissions from the moment its /readyz passes.
	second := cluster.StartLanesReplica(t)
	if err := cluster.PointLanesWebhookAt(ctx, second.WebhookPort); err != nil {
		t.Fatal(err)
	}
	readyAt := time.Now()
	var firstAnswer map[string]string
	err := framework.WaitFor(ctx, 10*time.Second, "the follower to answer an admission", func(context.Context) (bool, error) {
		labels, answered := probeAdmission(t, second, canary)
		if answered {
			firstAnswer = labels
		}
		return answered, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the follower answered its first admission %s after /readyz passed", time.Since(readyAt).Round(time.Millisecond))
	if !maps.Equal(firstAnswer, laneLabelKeys) {
		t.Errorf("the follower's first admission of a canary (right after /readyz) gave lane labels %v, want %v", firstAnswer, laneLabelKeys)
	}
	mustFollow(t, second, "after its first admission")

	// The leader dies.
	if err := first.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	mustFollow(t, second, "right after the leader was killed")

	// No leader, admissions answered by the follower: a new canary is labelled at creation.
	p := replaceCanary(t, canary)
	if got := laneLabelsOf(*p); !maps.Equal(got, laneLabelKeys) {
		t.Errorf("canary %s created through the follower's webhook while no replica led has lane labels %v at creation, want %v", p.Name, got, laneLabelKeys)
	}
	mustFollow(t, second, "after the canary created through its webhook")

	// No leader, admissions sent to the dead leader: the new canary is unlabelled at creation.
	pointWebhook(t, first, p, true)
	p2 := replaceCanary(t, p)
	if got := laneLabelsOf(*p2); len(got) != 0 {
		t.Fatalf("canary %s created while the webhook pointed at the dead leader has lane labels %v at creation; the scenario needs it unlabelled", p2.Name, got)
	}
	mustFollow(t, second, "after the canary created without a webhook")
	leadAt, err := second.WaitLeading(ctx, 45*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the follower leads %s after the leader was killed", leadAt.Sub(killedAt).Round(100*time.Millisecond))
	err = framework.WaitFor(ctx, 5*time.Second, "the new leader to label "+p2.Name, func(ctx context.Context) (bool, error) {
		got := &corev1.Pod{}
		if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(p2), got); err != nil {
			return false, err
		}
		if l := laneLabelsOf(*got); !maps.Equal(l, laneLabelKeys) {
			return false, framework.Pending("%s has lane labels %v", p2.Name, l)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s labelled %s after the new leader was seen leading", p2.Name, time.Since(leadAt).Round(10*time.Millisecond))
	if !awaitReconcilerLabelled(ctx, t, ns, p2.Name) {
		t.Errorf("canary %s has no LaneLabels Event from the new leader's reconciler", p2.Name)
	}

	// The dead replica's endpoint goes; the next batch comes under the new leader.
	pointWebhook(t, second, p2, false)
	labelledBefore := admissionsLabelled(t, second)
	if err := framework.ApproveRollout(ctx, cluster.Client, m.key()); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.WaitForRollout(ctx, cluster.Client, m.key(), stepTimeout, "to pause at step 2", framework.RolloutPausedAt(2)); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForReadyPods(ctx, cluster.Client, ns, map[string]string{"app": "f"}, stepTimeout, map[string]int{m.newImage: 2, m.oldImage: 2}); err != nil {
		t.Fatal(err)
	}
	pods = podsByImage(ctx, t, ns, "f")
	m.assertLaneLabels(t, pods, false)
	newBatch := 0
	for _, c := range pods[m.newImage] {
		if c.Name != p2.Name {
			newBatch++
			if reconcilerLabelled(ctx, t, ns, c.Name) {
				t.Errorf("canary %s of step 2 was labelled after creation by the reconciler, not by the new leader's webhook", c.Name)
			}
		}
	}
	if n := admissionsLabelled(t, second) - labelledBefore; n < newBatch {
		t.Errorf("the new leader's webhook labelled %d pods in step 2, want at least %d", n, newBatch)
	}
	m.complete(t)
}
