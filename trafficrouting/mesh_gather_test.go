package trafficrouting

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The gathering stages, on listed objects: only the lane's Routable members count, each member
// Service once, a Service someone else's object routes is a conflict and no hop, and a hop is
// ready for the lane or its base only from Ready, live pods with the lane label's tag or base.
func TestGatherStages(t *testing.T) {
	ro := func(name, lane string, phase rolloutsv1beta1.RolloutPhase, reason string) rolloutsv1beta1.Rollout {
		r := rolloutsv1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{TrafficRoutingAnnotation: lane}}}
		r.Status.Phase = phase
		if reason != "" {
			r.Status.Conditions = []rolloutsv1beta1.RolloutCondition{{Type: rolloutsv1beta1.RolloutConditionProgressing, Reason: reason}}
		}
		return r
	}
	rollouts := []rolloutsv1beta1.Rollout{
		ro("a", "lane", rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonInRolling),
		ro("b", "lane", rolloutsv1beta1.RolloutPhaseHealthy, ""),
		ro("c", "other", rolloutsv1beta1.RolloutPhaseProgressing, ""),
		ro("d", "lane", rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonFinalising),
		ro("e", "lane", rolloutsv1beta1.RolloutPhaseProgressing, ""),
	}
	var names []string
	for _, r := range routedMembers("lane", rollouts) {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"a", "e"}, names); diff != "" {
		t.Errorf("routed members (-want +got):\n%s", diff)
	}

	svc := func(name string, sel map[string]string) corev1.Service {
		return corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Selector: sel}}
	}
	index := indexServices([]corev1.Service{
		svc("a", map[string]string{"app": "a"}),
		svc("a-all", map[string]string{"tier": "web"}),
		svc("e", map[string]string{"app": "e"}),
		svc("none", nil),
	})
	candidates := index.memberServices([]map[string]string{{"app": "a", "tier": "web"}, {"app": "e", "tier": "web"}})
	var candidateNames []string
	for _, s := range candidates {
		candidateNames = append(candidateNames, s.Name)
	}
	if diff := cmp.Diff([]string{"a", "a-all", "e"}, candidateNames); diff != "" {
		t.Errorf("member services (-want +got):\n%s", diff)
	}

	blocker := &unstructured.Unstructured{}
	blocker.SetGroupVersionKind(VirtualServiceGVK)
	blocker.SetName("users-route")
	hops, conflicts := unblockedHops(candidates, map[string]*unstructured.Unstructured{"a-all": blocker})
	if diff := cmp.Diff([]hopConflict{{service: "a-all", by: blocker}}, conflicts, cmp.AllowUnexported(hopConflict{})); diff != "" {
		t.Errorf("conflicts (-want +got):\n%s", diff)
	}

	pod := func(app, tag string, ready, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app, LabelIstio: tag}}}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
		}
		return p
	}
	markReady(hops, index, []corev1.Pod{
		pod("a", "gray", true, false),
		pod("a", BaseTag, false, false), // not Ready
		pod("e", BaseTag, true, false),
		pod("e", "gray", true, true),  // being deleted
		pod("e", "blue", true, false), // another lane
	}, "gray", LabelIstio)
	want := []Hop{
		{Service: "a", Selector: map[string]string{"app": "a"}, LaneReady: true},
		{Service: "e", Selector: map[string]string{"app": "e"}, BaseReady: true},
	}
	if diff := cmp.Diff(want, hops); diff != "" {
		t.Errorf("hops (-want +got):\n%s", diff)
	}
}
