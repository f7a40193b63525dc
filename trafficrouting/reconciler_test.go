package trafficrouting

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type tally struct{ applied, removed, errors int }

func (t *tally) LabelsApplied(n int) { t.applied += n }
func (t *tally) LabelsRemoved(n int) { t.removed += n }
func (t *tally) ReconcileError()     { t.errors++ }

func reconcilePod(t *testing.T, p *corev1.Pod, objs ...client.Object) (*corev1.Pod, *tally, *record.FakeRecorder) {
	t.Helper()
	p.Name = "a-pod"
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cached(append(objs, p)...)...).
		WithIndex(&rolloutsv1beta1.Rollout{}, RolloutWorkloadIndex, IndexRolloutWorkload).Build()
	obs := &tally{}
	rec := record.NewFakeRecorder(10)
	r := &PodLabelReconciler{Client: c, Resolver: &Resolver{Reader: c, Defaults: DefaultDefaults()}, Recorder: rec, Observer: obs}
	key := client.ObjectKeyFromObject(p)
	for i := 0; i < 2; i++ { // the second run must find nothing to do
		if _, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key}); err != nil {
			t.Fatal(err)
		}
	}
	got := &corev1.Pod{}
	if err := c.Get(t.Context(), key, got); err != nil {
		t.Fatal(err)
	}
	return got, obs, rec
}

func laneLabels(p *corev1.Pod) map[string]string {
	out := map[string]string{}
	for k, v := range p.Labels {
		if IsLaneLabel(k) {
			out[k] = v
		}
	}
	return out
}

func TestReconcileLabelsAMissedCanary(t *testing.T) {
	p := pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new"))
	got, obs, rec := reconcilePod(t, p, deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray"))
	if diff := cmp.Diff(grayLabels, laneLabels(got)); diff != "" {
		t.Errorf("lane labels (-want +got):\n%s", diff)
	}
	if got.Annotations[ManagedLabelsAnnotation] != "alicloud.service.tag,opensergo.io/canary-gray" {
		t.Errorf("managed %q", got.Annotations[ManagedLabelsAnnotation])
	}
	if obs.applied != 2 || len(rec.Events) != 1 {
		t.Errorf("applied %d events %d, want 2 labels in one Event (second reconcile idle)", obs.applied, len(rec.Events))
	}
}

func TestReconcileRemovesOnlyManagedLabelsAfterPromotion(t *testing.T) {
	p := pod(map[string]string{"pod-template-hash": "new", "alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray", "ASM_TRAFFIC_TAG": "mine"}, owner("ReplicaSet", "a-new"))
	p.Annotations = map[string]string{ManagedLabelsAnnotation: "alicloud.service.tag,opensergo.io/canary-gray"}
	got, obs, _ := reconcilePod(t, p, deployment("a", nil), replicaSet("a-new", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseHealthy), lane("mse-traffic", nil, "gray"))
	if diff := cmp.Diff(map[string]string{"ASM_TRAFFIC_TAG": "mine"}, laneLabels(got)); diff != "" {
		t.Errorf("lane labels (-want +got):\n%s", diff)
	}
	if _, ok := got.Annotations[ManagedLabelsAnnotation]; ok {
		t.Error("managed-labels annotation left behind")
	}
	if obs.removed != 2 {
		t.Errorf("removed %d, want 2", obs.removed)
	}
}

func TestReconcileRolloutDeleted(t *testing.T) {
	p := pod(map[string]string{"pod-template-hash": "new", "alicloud.service.tag": "gray"}, owner("ReplicaSet", "a-new"))
	p.Annotations = map[string]string{ManagedLabelsAnnotation: "alicloud.service.tag"}
	got, _, _ := reconcilePod(t, p, deployment("a", nil), replicaSet("a-new", "a"))
	if len(laneLabels(got)) != 0 {
		t.Errorf("lane labels %v left on a pod whose Rollout is gone", laneLabels(got))
	}
}

func TestPodsOfRolloutIncludesExtraCanaryDeployment(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}
	stable := deployment("a", nil)
	stable.Spec.Selector = sel
	canary := deployment("a-canary", map[string]string{CanaryDeploymentLabel: "a"})
	canary.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a", "canary": "yes"}}
	p1 := pod(map[string]string{"app": "a"}, nil)
	p1.Name = "stable-1"
	p2 := pod(map[string]string{"app": "a", "canary": "yes"}, nil)
	p2.Name = "canary-1"
	other := pod(map[string]string{"app": "b"}, nil)
	other.Name = "other"
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cached(stable, canary, p1, p2, other)...).Build()
	r := &PodLabelReconciler{Client: c, Resolver: &Resolver{Reader: c}}
	reqs := r.podsOfRollout(t.Context(), rollout("rollout-a", "Deployment", "a", "lane", rolloutsv1beta1.RolloutPhaseProgressing))
	names := map[string]int{}
	for _, q := range reqs {
		names[q.Name]++
	}
	if names["stable-1"] == 0 || names["canary-1"] == 0 || names["other"] != 0 {
		t.Errorf("requests %v, want stable-1 and canary-1 but not other", names)
	}
}

func TestReconcileLaneDeletedMidRelease(t *testing.T) {
	// The Rollout still names its lane and is progressing, but the TrafficRouting is gone: the
	// pod loses the labels the lane gave it.
	p := pod(map[string]string{"pod-template-hash": "new", "alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}, owner("ReplicaSet", "a-new"))
	p.Annotations = map[string]string{ManagedLabelsAnnotation: "alicloud.service.tag,opensergo.io/canary-gray"}
	got, obs, _ := reconcilePod(t, p, deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing))
	if len(laneLabels(got)) != 0 || got.Annotations[ManagedLabelsAnnotation] != "" {
		t.Errorf("lane labels %v (managed %q) left on a pod whose lane was deleted", laneLabels(got), got.Annotations[ManagedLabelsAnnotation])
	}
	if obs.removed != 2 {
		t.Errorf("removed %d, want 2", obs.removed)
	}
}

func TestReconcileMisconfiguredLaneLeavesPodsAlone(t *testing.T) {
	p := pod(map[string]string{"pod-template-hash": "new", "alicloud.service.tag": "gray"}, owner("ReplicaSet", "a-new"))
	p.Annotations = map[string]string{ManagedLabelsAnnotation: "alicloud.service.tag"}
	got, obs, _ := reconcilePod(t, p, deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", map[string]string{AnnotationDialects: "nope"}, "gray"))
	if got.Labels["alicloud.service.tag"] != "gray" || obs.removed != 0 {
		t.Errorf("a misconfigured lane changed its pod: labels %v, removed %d", got.Labels, obs.removed)
	}
}

func TestReconcileGivesTemplateLabelBack(t *testing.T) {
	// Seed 004's template sets ASM_TRAFFIC_TAG: base. While releasing, the canary pod says the
	// lane's tag; once the Rollout is healthy it says base again, with base labels off and on.
	asm := map[string]string{AnnotationDialects: "asm"}
	for _, baseLabels := range []string{"false", "true"} {
		t.Run("base-labels="+baseLabels, func(t *testing.T) {
			asm[AnnotationBaseLabels] = baseLabels
			p := pod(map[string]string{"pod-template-hash": "new", LabelASM: "base"}, owner("ReplicaSet", "a-new"))
			objs := []client.Object{deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"), lane("asm-traffic", asm, "gray")}
			got, _, _ := reconcilePod(t, p, append(objs, rollout("rollout-a", "Deployment", "a", "asm-traffic", rolloutsv1beta1.RolloutPhaseProgressing))...)
			if got.Labels[LabelASM] != "gray" || got.Annotations[OriginalLabelsAnnotation] != `{"ASM_TRAFFIC_TAG":"base"}` {
				t.Fatalf("releasing: %s=%q, originals %q", LabelASM, got.Labels[LabelASM], got.Annotations[OriginalLabelsAnnotation])
			}
			got.ResourceVersion = ""
			done, _, rec := reconcilePod(t, got, append(objs, rollout("rollout-a", "Deployment", "a", "asm-traffic", rolloutsv1beta1.RolloutPhaseHealthy))...)
			if done.Labels[LabelASM] != "base" {
				t.Errorf("after the release %s=%q, want the template's base", LabelASM, done.Labels[LabelASM])
			}
			for _, a := range []string{ManagedLabelsAnnotation, OriginalLabelsAnnotation} {
				if v, ok := done.Annotations[a]; ok {
					t.Errorf("annotation %s=%q left after the release", a, v)
				}
			}
			if ev := <-rec.Events; !strings.Contains(ev, "restored ASM_TRAFFIC_TAG=base") {
				t.Errorf("event %q does not say the label was restored", ev)
			}
		})
	}
}

func TestWorkloadEventsEnqueueOnlyLaneMembers(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}
	member := deployment("a", nil)
	member.Spec.Selector = sel
	canary := deployment("a-canary", map[string]string{CanaryDeploymentLabel: "a"})
	canary.Spec.Selector = sel
	other := deployment("b", nil)
	other.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}
	pa := pod(map[string]string{"app": "a"}, nil)
	pa.Name = "a-1"
	pb := pod(map[string]string{"app": "b"}, nil)
	pb.Name = "b-1"
	c := fake.NewClientBuilder().WithScheme(scheme(t)).
		WithObjects(cached(member, canary, other, pa, pb, rollout("rollout-a", "Deployment", "a", "lane", rolloutsv1beta1.RolloutPhaseProgressing))...).
		WithIndex(&rolloutsv1beta1.Rollout{}, RolloutWorkloadIndex, IndexRolloutWorkload).Build()
	r := &PodLabelReconciler{Client: c, Resolver: &Resolver{Reader: c}}
	for _, tc := range []struct {
		workload client.Object
		want     int
	}{{member, 1}, {canary, 1}, {other, 0}} {
		if got := r.podsOfMemberWorkload(t.Context(), tc.workload); len(got) != tc.want {
			t.Errorf("%s: %d requests %v, want %d", tc.workload.GetName(), len(got), got, tc.want)
		}
	}
}

func TestRevisionsChangedPredicate(t *testing.T) {
	old := &appsv1.StatefulSet{}
	old.Status.UpdateRevision, old.Status.CurrentRevision = "s-1", "s-1"
	scaled := old.DeepCopy()
	scaled.Status.ReadyReplicas = 3
	released := old.DeepCopy()
	released.Status.UpdateRevision = "s-2"
	p := revisionsChanged()
	if p.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: scaled}) {
		t.Error("a status change that keeps the revisions passed")
	}
	if !p.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: released}) {
		t.Error("a new update revision was filtered out")
	}
}
