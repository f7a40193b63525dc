package trafficrouting

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type tally struct{ applied, removed, errors int }

func (t *tally) LabelsApplied(n int) { t.applied += n }
func (t *tally) LabelsRemoved(n int) { t.removed += n }
func (t *tally) ReconcileError()     { t.errors++ }

func reconcilePod(t *testing.T, p *corev1.Pod, objs ...client.Object) (*corev1.Pod, *tally, *record.FakeRecorder) {
	t.Helper()
	p.Name = "a-pod"
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(append(objs, p)...).
		WithIndex(&v1beta1.Rollout{}, RolloutWorkloadIndex, IndexRolloutWorkload).Build()
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
		rollout("rollout-a", "Deployment", "a", "mse-traffic", v1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray"))
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
		rollout("rollout-a", "Deployment", "a", "mse-traffic", v1beta1.RolloutPhaseHealthy), lane("mse-traffic", nil, "gray"))
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
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(stable, canary, p1, p2, other).Build()
	r := &PodLabelReconciler{Client: c, Resolver: &Resolver{Reader: c}}
	reqs := r.podsOfRollout(t.Context(), rollout("rollout-a", "Deployment", "a", "lane", v1beta1.RolloutPhaseProgressing))
	names := map[string]int{}
	for _, q := range reqs {
		names[q.Name]++
	}
	if names["stable-1"] == 0 || names["canary-1"] == 0 || names["other"] != 0 {
		t.Errorf("requests %v, want stable-1 and canary-1 but not other", names)
	}
}
