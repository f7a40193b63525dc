package trafficrouting

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestRoutedMembers(t *testing.T) {
	var names []string
	for _, r := range routedMembers("lane", []rolloutsv1beta1.Rollout{
		gatherRollout("a", "lane", rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonInRolling),
		gatherRollout("b", "lane", rolloutsv1beta1.RolloutPhaseHealthy, ""),
		gatherRollout("c", "other", rolloutsv1beta1.RolloutPhaseProgressing, ""),
		gatherRollout("d", "lane", rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonFinalising),
		gatherRollout("e", "lane", rolloutsv1beta1.RolloutPhaseProgressing, ""),
	}) {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"a", "e"}, names); diff != "" {
		t.Errorf("routed members (-want +got):\n%s", diff)
	}
}

// gatherRollout is a Rollout of Deployment name in a lane, in a phase (and a Progressing reason).
func gatherRollout(name, lane string, phase rolloutsv1beta1.RolloutPhase, reason string) rolloutsv1beta1.Rollout {
	r := rolloutsv1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Annotations: map[string]string{TrafficRoutingAnnotation: lane}}}
	r.Spec.WorkloadRef = rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name}
	r.Status.Phase = phase
	if reason != "" {
		r.Status.Conditions = []rolloutsv1beta1.RolloutCondition{{Type: rolloutsv1beta1.RolloutConditionProgressing, Reason: reason}}
	}
	return r
}

// The gathering of one hop, through the cache indexes: a Service is a hop only while it selects
// the pod template of a Routable member of the lane and no object someone else wrote routes it,
// and a hop is ready for the lane or its base only from Ready, live pods it selects with the lane
// label's tag or base.
func TestGatherHop(t *testing.T) {
	deploy := func(name string, labels map[string]string) client.Object {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}},
		}}
	}
	svc := func(name string, selector map[string]string) client.Object {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: corev1.ServiceSpec{Selector: selector}}
	}
	pod := func(name, app, tag string, ready, deleting bool) client.Object {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{"app": app, "tier": "web", LabelIstio: tag}}}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
			p.Finalizers = []string{"test/keep"}
		}
		return p
	}
	blocker := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"namespace": "shop", "name": "users-route"},
		"spec":     map[string]any{"hosts": []any{"a-all.shop.svc.cluster.local"}},
	}}
	ro := func(r rolloutsv1beta1.Rollout) client.Object { return &r }
	objs := []client.Object{
		ro(gatherRollout("a", "lane", rolloutsv1beta1.RolloutPhaseProgressing, rolloutsv1beta1.ProgressingReasonInRolling)),
		ro(gatherRollout("b", "lane", rolloutsv1beta1.RolloutPhaseHealthy, "")),
		ro(gatherRollout("e", "lane", rolloutsv1beta1.RolloutPhaseProgressing, "")),
		deploy("a", map[string]string{"app": "a", "tier": "web"}),
		deploy("b", map[string]string{"app": "b"}),
		deploy("e", map[string]string{"app": "e", "tier": "web"}),
		svc("a", map[string]string{"app": "a"}),
		svc("a-all", map[string]string{"tier": "web"}),
		svc("b", map[string]string{"app": "b"}),
		svc("e", map[string]string{"app": "e"}),
		svc("none", nil),
		blocker,
		pod("a-1", "a", "gray", true, false),
		pod("a-2", "a", BaseTag, false, false), // not Ready
		pod("e-1", "e", BaseTag, true, false),
		pod("e-2", "e", "gray", true, true),  // being deleted
		pod("e-3", "e", "blue", true, false), // another lane
	}
	c := meshClientBuilder(t).WithObjects(append(objs, istioLane())...).Build()
	rec := record.NewFakeRecorder(10)
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: rec}
	flavor, _ := flavorOf(MeshIstio)
	routing := laneRouting{lane: Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}, flavor: flavor}

	got := map[string]*Hop{}
	for _, service := range []string{"a", "a-all", "b", "e", "none", "gone"} {
		h, ok, err := r.hop(t.Context(), istioLane(), routing, service)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got[service] = &h
		}
	}
	want := map[string]*Hop{
		"a": {Service: "a", Selector: map[string]string{"app": "a"}, LaneReady: true},
		"e": {Service: "e", Selector: map[string]string{"app": "e"}, BaseReady: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hops (-want +got):\n%s", diff)
	}
	checkWarnings(t, rec, []string{"Warning LaneRouteConflict service a-all is routed by VirtualService users-route"})
}

func TestRoutedServices(t *testing.T) {
	obj := func(kind, name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAPIVersion(map[string]string{"Service": "v1", "HTTPRoute": "gateway.networking.k8s.io/v1"}[kind])
		if u.GetAPIVersion() == "" {
			u.SetAPIVersion("networking.istio.io/v1")
		}
		u.SetKind(kind)
		u.SetNamespace("shop")
		u.SetName(name)
		return u
	}
	tests := map[string]struct {
		obj  client.Object
		tag  string
		want []string
	}{
		"a VirtualService by name and hosts": {obj: obj("VirtualService", "lanes-a", map[string]any{"hosts": []any{"b.shop.svc", "c.other", "a"}}), want: []string{"a", "b"}},
		"a DestinationRule by host":          {obj: obj("DestinationRule", "users", map[string]any{"host": "c.shop.svc.cluster.local"}), want: []string{"c"}},
		"an HTTPRoute by its Service parents": {obj: obj("HTTPRoute", "r", map[string]any{"parentRefs": []any{
			map[string]any{"kind": "Service", "group": "", "name": "a"}, map[string]any{"kind": "Gateway", "name": "gw"},
		}}), want: []string{"a"}},
		"a lane Service, unstructured":      {obj: obj("Service", "a-gray", nil), tag: "gray", want: []string{"a"}},
		"a base Service, typed":             {obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a-base"}}, tag: "gray", want: []string{"a"}},
		"a Service of another tag":          {obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a-blue"}}, tag: "gray"},
		"a lane Service without a lane tag": {obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a-gray"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, routedServices(tc.obj, tc.tag)); diff != "" {
				t.Errorf("routed services (-want +got):\n%s", diff)
			}
		})
	}
}
