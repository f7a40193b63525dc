package trafficrouting

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func newQueue(t *testing.T) workqueue.TypedRateLimitingInterface[meshRequest] {
	t.Helper()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[meshRequest]())
	t.Cleanup(q.ShutDown)
	return q
}

// drain returns what the queue holds, sorted by Service.
func drain(q workqueue.TypedRateLimitingInterface[meshRequest]) []meshRequest {
	var out []meshRequest
	for q.Len() > 0 {
		req, _ := q.Get()
		q.Done(req)
		out = append(out, req)
	}
	slices.SortFunc(out, func(a, b meshRequest) int {
		if a.Service < b.Service {
			return -1
		}
		if a.Service > b.Service {
			return 1
		}
		return 0
	})
	return out
}

func hopRequest(service string) meshRequest {
	return meshRequest{Lane: types.NamespacedName{Namespace: "shop", Name: "lane"}, Service: service}
}

// storedObject reads a mesh object as the API server would store it.
func storedObject(t *testing.T, c client.Client, gvk schema.GroupVersionKind, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// The event of the reconciler's own write — the object holding what it last sent, with what the
// API server adds — reconciles nothing; an edit by someone else, a deletion, and an object it
// never wrote still reconcile its hop.
func TestMeshObjectEventsOwnWrites(t *testing.T) {
	c := meshClientBuilder(t).WithObjects(append(member("a", true), istioLane())...).WithStatusSubresource(&corev1.Pod{}).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
	if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(istioLane())}); err != nil {
		t.Fatal(err)
	}
	h := r.meshObjectEvents()
	vs := storedObject(t, c, VirtualServiceGVK, "lanes-a")
	dr := storedObject(t, c, DestinationRuleGVK, "lanes-a")
	// What the API server adds: metadata, and keys of its own in the spec.
	vs.SetAnnotations(map[string]string{MeshSpecHashAnnotation: vs.GetAnnotations()[MeshSpecHashAnnotation], "kubectl.kubernetes.io/note": "x"})
	vs.Object["spec"].(map[string]any)["gateways"] = []any{"mesh"}

	q := newQueue(t)
	h.Create(t.Context(), event.TypedCreateEvent[client.Object]{Object: dr}, q)
	h.Create(t.Context(), event.TypedCreateEvent[client.Object]{Object: vs}, q)
	if got := drain(q); len(got) != 0 {
		t.Fatalf("own creates enqueued %v, want nothing", got)
	}

	// The lane pod turns not Ready: the next reconcile updates the VirtualService, whose update
	// event is again its own.
	setReady(t, c, "a-canary", false)
	if _, err := r.Reconcile(t.Context(), hopRequest("a")); err != nil {
		t.Fatal(err)
	}
	updated := storedObject(t, c, VirtualServiceGVK, "lanes-a")
	if updated.GetResourceVersion() == vs.GetResourceVersion() {
		t.Fatal("the VirtualService was not updated when a's lane pod turned not Ready")
	}
	h.Update(t.Context(), event.TypedUpdateEvent[client.Object]{ObjectOld: vs, ObjectNew: updated}, q)
	if got := drain(q); len(got) != 0 {
		t.Fatalf("own update enqueued %v, want nothing", got)
	}

	edited := updated.DeepCopy()
	http := edited.Object["spec"].(map[string]any)["http"].([]any)
	http[0].(map[string]any)["route"] = []any{map[string]any{"destination": map[string]any{"host": "elsewhere"}}}
	h.Update(t.Context(), event.TypedUpdateEvent[client.Object]{ObjectOld: updated, ObjectNew: edited}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, drain(q)); diff != "" {
		t.Errorf("someone's edit of the route (-want +got):\n%s", diff)
	}

	unlabelled := updated.DeepCopy()
	unlabelled.SetAnnotations(nil)
	h.Update(t.Context(), event.TypedUpdateEvent[client.Object]{ObjectOld: updated, ObjectNew: unlabelled}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, drain(q)); diff != "" {
		t.Errorf("someone's removal of the spec hash (-want +got):\n%s", diff)
	}

	h.Delete(t.Context(), event.TypedDeleteEvent[client.Object]{Object: updated}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, drain(q)); diff != "" {
		t.Errorf("deletion (-want +got):\n%s", diff)
	}
	// Once deleted, what was sent is forgotten: the same object coming back is not an own write.
	h.Create(t.Context(), event.TypedCreateEvent[client.Object]{Object: updated}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, drain(q)); diff != "" {
		t.Errorf("re-creation after a deletion (-want +got):\n%s", diff)
	}

	// A DestinationRule someone else writes for a's host concerns a's hop; its status-only
	// update does not.
	users := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"namespace": "shop", "name": "users-own"},
		"spec":     map[string]any{"host": "a.shop.svc.cluster.local"},
	}}
	h.Create(t.Context(), event.TypedCreateEvent[client.Object]{Object: users}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, drain(q)); diff != "" {
		t.Errorf("someone's DestinationRule (-want +got):\n%s", diff)
	}
	withStatus := users.DeepCopy()
	withStatus.Object["status"] = map[string]any{"observedGeneration": int64(1)}
	h.Update(t.Context(), event.TypedUpdateEvent[client.Object]{ObjectOld: users, ObjectNew: withStatus}, q)
	if got := drain(q); len(got) != 0 {
		t.Errorf("a status update of someone's DestinationRule enqueued %v, want nothing", got)
	}
}

// A typed Service event (the watch lanes-manager has on Services) of a gateway-api lane's own
// Service write is an own write too; a member Service's change concerns its own hop.
func TestMeshObjectEventsServices(t *testing.T) {
	c := meshClientBuilder(t).WithObjects(append(gatewayMember("a", true), gatewayLane())...).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
	if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(gatewayLane())}); err != nil {
		t.Fatal(err)
	}
	h := r.meshObjectEvents()
	q := newQueue(t)
	laneSvc := &corev1.Service{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "a-gray"}, laneSvc); err != nil {
		t.Fatal(err)
	}
	laneSvc.Spec.ClusterIP, laneSvc.Spec.Type = "10.96.0.10", corev1.ServiceTypeClusterIP
	h.Create(t.Context(), event.TypedCreateEvent[client.Object]{Object: laneSvc}, q)
	if got := drain(q); len(got) != 0 {
		t.Fatalf("own lane Service create enqueued %v, want nothing", got)
	}
	edited := laneSvc.DeepCopy()
	edited.Spec.Selector["app"] = "other"
	h.Update(t.Context(), event.TypedUpdateEvent[client.Object]{ObjectOld: laneSvc, ObjectNew: edited}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, drain(q)); diff != "" {
		t.Errorf("someone's edit of the lane Service (-want +got):\n%s", diff)
	}

	memberSvc := &corev1.Service{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "a"}, memberSvc); err != nil {
		t.Fatal(err)
	}
	relabelled := memberSvc.DeepCopy()
	relabelled.Annotations = map[string]string{"note": "x"}
	h.Update(t.Context(), event.TypedUpdateEvent[client.Object]{ObjectOld: memberSvc, ObjectNew: relabelled}, q)
	if got := drain(q); len(got) != 0 {
		t.Errorf("an annotation on a member Service enqueued %v, want nothing", got)
	}
	reported := memberSvc.DeepCopy()
	reported.Spec.Ports = append(reported.Spec.Ports, corev1.ServicePort{Name: "grpc", Port: 9090})
	h.Update(t.Context(), event.TypedUpdateEvent[client.Object]{ObjectOld: memberSvc, ObjectNew: reported}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, drain(q)); diff != "" {
		t.Errorf("a member Service's new port (-want +got):\n%s", diff)
	}
	// A lane pod is selected by a's lane Service too, which is never a hop: only a's hop.
	pod := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "a-canary"}, pod); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]meshRequest{hopRequest("a")}, r.hopsOf(t.Context(), pod)); diff != "" {
		t.Errorf("hops of a's lane pod (-want +got):\n%s", diff)
	}
	// Someone's Service named like a's base Service stands in a's way.
	h.Create(t.Context(), event.TypedCreateEvent[client.Object]{Object: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a-base"}}}, q)
	if diff := cmp.Diff([]meshRequest{hopRequest("a"), hopRequest("a-base")}, drain(q)); diff != "" {
		t.Errorf("someone's a-base Service (-want +got):\n%s", diff)
	}
}

// A pod event reaches only the hops of the Services that select the pod, and a pod update only
// when it changes the pod's labels, readiness or deletion.
func TestLanePodEvents(t *testing.T) {
	objs := append(member("a", true), member("c", true)...)
	c := meshClientBuilder(t).WithObjects(append(objs, istioLane())...).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
	pod := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "c-canary"}, pod); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]meshRequest{hopRequest("c")}, r.hopsOf(t.Context(), pod)); diff != "" {
		t.Errorf("hops of c's lane pod (-want +got):\n%s", diff)
	}

	p := lanePodChanges()
	notReady := pod.DeepCopy()
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	statusOnly := pod.DeepCopy()
	statusOnly.Status.PodIP = "10.0.0.9"
	relabelled := pod.DeepCopy()
	relabelled.Labels[LabelIstio] = BaseTag
	unlabelled := pod.DeepCopy()
	delete(unlabelled.Labels, LabelIstio)
	deleting := pod.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}}}
	plainNotReady := plain.DeepCopy()
	plainNotReady.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	for name, tc := range map[string]struct {
		old, new *corev1.Pod
		want     bool
	}{
		"readiness":                {pod, notReady, true},
		"another status field":     {pod, statusOnly, false},
		"lane label value":         {pod, relabelled, true},
		"lane label removed":       {pod, unlabelled, true},
		"deletion":                 {pod, deleting, true},
		"a pod without lane label": {plain, plainNotReady, false},
	} {
		if got := p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: update let through = %v, want %v", name, got, tc.want)
		}
	}
}

// One member's transition rewrites that member's objects only: the other member's objects keep
// their resource versions.
func TestMeshRouteReconcilerHopLeavesOtherMembers(t *testing.T) {
	objs := append(member("a", true), member("c", true)...)
	c := meshClientBuilder(t).WithObjects(append(objs, istioLane())...).WithStatusSubresource(&corev1.Pod{}).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(50)}
	if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(istioLane())}); err != nil {
		t.Fatal(err)
	}
	versions := func() map[string]string {
		out := map[string]string{}
		for _, gvk := range []schema.GroupVersionKind{VirtualServiceGVK, DestinationRuleGVK} {
			for _, name := range []string{"lanes-a", "lanes-c"} {
				out[gvk.Kind+"/"+name] = storedObject(t, c, gvk, name).GetResourceVersion()
			}
		}
		return out
	}
	before := versions()

	setReady(t, c, "c-canary", false)
	pod := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "c-canary"}, pod); err != nil {
		t.Fatal(err)
	}
	reqs := r.hopsOf(t.Context(), pod)
	if diff := cmp.Diff([]meshRequest{hopRequest("c")}, reqs); diff != "" {
		t.Fatalf("hops of c's lane pod (-want +got):\n%s", diff)
	}
	for _, req := range reqs {
		if _, err := r.Reconcile(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	after := versions()
	for _, key := range []string{"VirtualService/lanes-a", "DestinationRule/lanes-a", "DestinationRule/lanes-c"} {
		if before[key] != after[key] {
			t.Errorf("%s rewritten (resource version %s -> %s) by c's transition", key, before[key], after[key])
		}
	}
	if before["VirtualService/lanes-c"] == after["VirtualService/lanes-c"] {
		t.Error("c's VirtualService kept its lane route after c's lane pod turned not Ready")
	}
	routes, _, _ := unstructured.NestedSlice(storedObject(t, c, VirtualServiceGVK, "lanes-c").Object, "spec", "http")
	if len(routes) != 1 {
		t.Errorf("c's VirtualService has %d http routes, want only the base route", len(routes))
	}
}
