package trafficrouting

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func meshScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, gvk := range []schema.GroupVersionKind{VirtualServiceGVK, DestinationRuleGVK, HTTPRouteGVK} {
		s.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
		s.AddKnownTypeWithName(gvk.GroupVersion().WithKind(gvk.Kind+"List"), &unstructured.UnstructuredList{})
	}
	return s
}

// meshClientBuilder is a fake client builder with the mesh kinds and the indexes the
// MeshRouteReconciler reads (both meshes, no CloneSets).
func meshClientBuilder(t *testing.T) *fake.ClientBuilder {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(meshScheme(t)).
		WithIndex(&rolloutsv1beta1.Rollout{}, RolloutWorkloadIndex, IndexRolloutWorkload)
	for _, idx := range meshIndexes([]Mesh{MeshIstio, MeshGatewayAPI}, false) {
		b = b.WithIndex(idx.obj, idx.field, idx.extract)
	}
	return b
}

// member returns a Service, Deployment, Rollout and pods of one lane member: stable pods labelled
// base, and, when releasing, a Ready canary pod labelled gray.
func member(name string, releasing bool) []client.Object {
	lbl := map[string]string{"app": name}
	ro := &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollout-" + name, Annotations: map[string]string{TrafficRoutingAnnotation: "lane"}},
		Spec:       rolloutsv1beta1.RolloutSpec{WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name}},
		Status:     rolloutsv1beta1.RolloutStatus{Phase: rolloutsv1beta1.RolloutPhaseHealthy},
	}
	pod := func(suffix, tag string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name + "-" + suffix, Labels: map[string]string{"app": name, LabelIstio: tag}},
			Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		}
	}
	objs := []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: corev1.ServiceSpec{Selector: lbl}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}},
		}},
		ro, pod("stable", BaseTag),
	}
	if releasing {
		ro.Status.Phase = rolloutsv1beta1.RolloutPhaseProgressing
		objs = append(objs, pod("canary", "gray"))
	}
	return objs
}

func istioLane() *rolloutsv1alpha1.TrafficRouting {
	tr := trafficRouting(map[string]string{AnnotationMesh: "istio"}, header("x-mse-tag", "gray"))
	tr.Name = "lane"
	tr.UID = "uid-lane"
	return tr
}

func meshObjects(t *testing.T, c client.Client) []string {
	t.Helper()
	var out []string
	for _, gvk := range []schema.GroupVersionKind{DestinationRuleGVK, VirtualServiceGVK} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(t.Context(), list); err != nil {
			t.Fatal(err)
		}
		for _, u := range list.Items {
			out = append(out, gvk.Kind+"/"+u.GetName())
		}
	}
	return out
}

func TestIstioRouteReconciler(t *testing.T) {
	userDR := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"namespace": "shop", "name": "users-own"},
		"spec":     map[string]any{"host": "c.shop.svc.cluster.local"},
	}}
	tests := map[string]struct {
		objs       []client.Object
		want       []string
		wantEvents []string
	}{
		"releasing members get a DestinationRule and VirtualService, B none": {
			objs: append(append(member("a", true), member("b", false)...), member("c", true)...),
			want: []string{"DestinationRule/lanes-a", "DestinationRule/lanes-c", "VirtualService/lanes-a", "VirtualService/lanes-c"},
		},
		"a user's DestinationRule for c's host: c is left alone": {
			objs:       append(append(member("a", true), member("c", true)...), userDR),
			want:       []string{"DestinationRule/lanes-a", "DestinationRule/users-own", "VirtualService/lanes-a"},
			wantEvents: []string{"Warning LaneRouteConflict service c is routed by DestinationRule users-own"},
		},
		"no member releasing: the route this lane wrote is deleted, its DestinationRule drains": {
			objs: append(member("a", false),
				IstioObjects(Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}, LaneOwner(istioLane()), Hop{Service: "a", LaneReady: true, BaseReady: true})[0],
				IstioObjects(Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}, LaneOwner(istioLane()), Hop{Service: "a", LaneReady: true, BaseReady: true})[1]),
			want: []string{"DestinationRule/lanes-a"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := meshClientBuilder(t).WithObjects(cached(append(tc.objs, istioLane())...)...).Build()
			rec := record.NewFakeRecorder(20)
			r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: rec}
			if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(istioLane())}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, meshObjects(t, c)); diff != "" {
				t.Errorf("mesh objects (-want +got):\n%s", diff)
			}
			checkWarnings(t, rec, tc.wantEvents)
		})
	}
}

func TestIstioRouteReconcilerLaneRouteFollowsReadiness(t *testing.T) {
	objs := member("a", true)
	c := meshClientBuilder(t).WithObjects(cached(append(objs, istioLane())...)...).WithStatusSubresource(&corev1.Pod{}).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
	req := meshRequest{Lane: client.ObjectKeyFromObject(istioLane())}
	routes := func() []string {
		t.Helper()
		if _, err := r.Reconcile(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		vs := &unstructured.Unstructured{}
		vs.SetGroupVersionKind(VirtualServiceGVK)
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "lanes-a"}, vs); err != nil {
			t.Fatal(err)
		}
		http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		var names []string
		for _, h := range http {
			names = append(names, h.(map[string]any)["name"].(string))
		}
		return names
	}
	if diff := cmp.Diff([]string{"lane-gray", "base"}, routes()); diff != "" {
		t.Errorf("with a Ready canary (-want +got):\n%s", diff)
	}
	canary := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "a-canary"}, canary); err != nil {
		t.Fatal(err)
	}
	canary.Status.Conditions[0].Status = corev1.ConditionFalse
	if err := c.Status().Update(t.Context(), canary); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"base"}, routes()); diff != "" {
		t.Errorf("with the canary not Ready (-want +got):\n%s", diff)
	}
}

func checkWarnings(t *testing.T, rec *record.FakeRecorder, want []string) {
	t.Helper()
	var warnings []string
	for len(rec.Events) > 0 {
		if e := <-rec.Events; strings.HasPrefix(e, corev1.EventTypeWarning) {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != len(want) {
		t.Fatalf("warnings %q, want %q", warnings, want)
	}
	for i, w := range want {
		if !strings.HasPrefix(warnings[i], w) {
			t.Errorf("warning %q, want prefix %q", warnings[i], w)
		}
	}
}

// The Service selector index finds every Service whose selector selects a label set, each once,
// and no other.
func TestServicesSelecting(t *testing.T) {
	svc := func(name string, selector map[string]string) client.Object {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Spec: corev1.ServiceSpec{Selector: selector}}
	}
	c := meshClientBuilder(t).WithObjects(
		svc("a", map[string]string{"app": "a"}),
		svc("a-v2", map[string]string{"app": "a", "version": "v2"}),
		svc("all", map[string]string{"tier": "web"}),
		svc("headless-manual", nil),
		svc("b", map[string]string{"app": "b"}),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "a"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "a"}}},
	).Build()
	r := &MeshRouteReconciler{Client: c}
	tests := []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"app": "a", "tier": "web", "pod-template-hash": "x"}, []string{"a", "all"}},
		{map[string]string{"app": "a", "version": "v2", "tier": "web"}, []string{"a", "a-v2", "all"}},
		{map[string]string{"app": "c"}, nil},
		{nil, nil},
	}
	for _, tc := range tests {
		got, err := r.servicesSelecting(t.Context(), "shop", tc.labels)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("services selecting %v (-want +got):\n%s", tc.labels, diff)
		}
	}
}

func TestIstioHostService(t *testing.T) {
	for host, want := range map[string]string{
		"c": "c", "c.shop": "c", "c.shop.svc": "c", "c.shop.svc.cluster.local": "c", "C.Shop.": "c",
		"c.other": "", "c.shop.example": "", "*.shop.svc.cluster.local": "", "*": "", "": "",
	} {
		if got := IstioHostService(host, "shop"); got != want {
			t.Errorf("IstioHostService(%q, shop) = %q, want %q", host, got, want)
		}
	}
}

// istioDefaultRoute reconciles the lane and returns the destinations of the default route of a's
// VirtualService and the names of its routes.
func istioDefaultRoute(t *testing.T, r *MeshRouteReconciler) (routes []string, destinations []any) {
	t.Helper()
	if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(istioLane())}); err != nil {
		t.Fatal(err)
	}
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(VirtualServiceGVK)
	if err := r.Client.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "lanes-a"}, vs); err != nil {
		t.Fatal(err)
	}
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, h := range http {
		routes = append(routes, h.(map[string]any)["name"].(string))
	}
	destinations, _, _ = unstructured.NestedSlice(http[len(http)-1].(map[string]any), "route")
	return routes, destinations
}

func setReady(t *testing.T, c client.Client, pod string, ready bool) {
	t.Helper()
	p := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: pod}, p); err != nil {
		t.Fatal(err)
	}
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	if ready {
		p.Status.Conditions[0].Status = corev1.ConditionTrue
	}
	if err := c.Status().Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

// The last batch: once no base pod is Ready, the default route must lose its subset (the desired
// route drops a key the live one has), else every non-lane request goes to an empty subset.
func TestIstioRouteReconcilerDefaultRouteLeavesEmptyBase(t *testing.T) {
	c := meshClientBuilder(t).WithObjects(cached(append(member("a", true), istioLane())...)...).WithStatusSubresource(&corev1.Pod{}).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
	toBase := []any{map[string]any{"destination": map[string]any{"host": "a", "subset": "base"}}}
	toService := []any{map[string]any{"destination": map[string]any{"host": "a"}}}

	routes, dest := istioDefaultRoute(t, r)
	if diff := cmp.Diff([]string{"lane-gray", "base"}, routes); diff != "" {
		t.Errorf("base Ready: routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(toBase, dest); diff != "" {
		t.Errorf("base Ready: default route (-want +got):\n%s", diff)
	}
	setReady(t, c, "a-stable", false)
	routes, dest = istioDefaultRoute(t, r)
	if diff := cmp.Diff([]string{"lane-gray", "base"}, routes); diff != "" {
		t.Errorf("no base Ready: routes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(toService, dest); diff != "" {
		t.Errorf("no base Ready: default route (-want +got):\n%s", diff)
	}
	setReady(t, c, "a-stable", true)
	if _, dest = istioDefaultRoute(t, r); !cmp.Equal(toBase, dest) {
		t.Errorf("base Ready again: default route %v, want %v", dest, toBase)
	}
}

// Someone else's edit of a lane object's spec is undone; a key someone else adds is kept until
// the spec Kruise Lanes wants changes.
func TestIstioRouteReconcilerRestoresEdits(t *testing.T) {
	toBase := []any{map[string]any{"destination": map[string]any{"host": "a", "subset": "base"}}}
	tests := map[string]struct {
		edit    func(vs *unstructured.Unstructured)
		rewrite bool
	}{
		"a value changed": {
			edit: func(vs *unstructured.Unstructured) {
				http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
				http[1].(map[string]any)["route"] = []any{map[string]any{"destination": map[string]any{"host": "a", "subset": "gray"}}}
				_ = unstructured.SetNestedSlice(vs.Object, http, "spec", "http")
			},
			rewrite: true,
		},
		"a value removed": {
			edit: func(vs *unstructured.Unstructured) {
				http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
				delete(http[1].(map[string]any)["route"].([]any)[0].(map[string]any)["destination"].(map[string]any), "subset")
				_ = unstructured.SetNestedSlice(vs.Object, http, "spec", "http")
			},
			rewrite: true,
		},
		"the spec hash removed": {
			edit:    func(vs *unstructured.Unstructured) { vs.SetAnnotations(nil) },
			rewrite: true,
		},
		"a key added": {
			edit: func(vs *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(vs.Object, []any{"mesh"}, "spec", "gateways")
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := meshClientBuilder(t).WithObjects(cached(append(member("a", true), istioLane())...)...).Build()
			r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
			istioDefaultRoute(t, r)
			vs := &unstructured.Unstructured{}
			vs.SetGroupVersionKind(VirtualServiceGVK)
			key := client.ObjectKey{Namespace: "shop", Name: "lanes-a"}
			if err := c.Get(t.Context(), key, vs); err != nil {
				t.Fatal(err)
			}
			tc.edit(vs)
			if err := c.Update(t.Context(), vs); err != nil {
				t.Fatal(err)
			}
			edited := vs.GetResourceVersion()
			if _, dest := istioDefaultRoute(t, r); !cmp.Equal(toBase, dest) {
				t.Errorf("default route %v, want %v", dest, toBase)
			}
			if err := c.Get(t.Context(), key, vs); err != nil {
				t.Fatal(err)
			}
			if rewritten := vs.GetResourceVersion() != edited; rewritten != tc.rewrite {
				t.Errorf("rewritten %v, want %v", rewritten, tc.rewrite)
			}
		})
	}
}

func TestSpecHash(t *testing.T) {
	hashOf := func(spec any) string {
		t.Helper()
		h, err := specHash(&unstructured.Unstructured{Object: map[string]any{"spec": spec}})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	route := func(destination map[string]any) any {
		return map[string]any{"hosts": []any{"a"}, "http": []any{map[string]any{"name": "base", "route": []any{map[string]any{"destination": destination}}}}}
	}
	toBase := hashOf(route(map[string]any{"host": "a", "subset": "base"}))
	if again := hashOf(route(map[string]any{"subset": "base", "host": "a"})); again != toBase {
		t.Errorf("equal specs hash to %s and %s", toBase, again)
	}
	differs := map[string]any{
		"subset dropped":            route(map[string]any{"host": "a"}),
		"strings split differently": route(map[string]any{"host": "as", "subset": "ubase"}),
		"a list shrunk":             map[string]any{"hosts": []any{"a"}},
	}
	for name, spec := range differs {
		if hashOf(spec) == toBase {
			t.Errorf("%s: same hash", name)
		}
	}
	if hashOf(map[string]any{"port": "80"}) == hashOf(map[string]any{"port": int64(80)}) {
		t.Error(`port "80" and port 80: same hash`)
	}
	if _, err := specHash(&unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"labels": map[string]string{"a": "b"}}}}); err == nil {
		t.Error("a typed map in an unstructured spec: no error")
	}
}

// TestMeshRouteReconcilerDrainsDestinations: when a hop is no longer routed, its VirtualService
// goes at once and its DestinationRule only RouteDrain later (a data plane learns routes and
// destinations in separate updates); the drain survives a restart (it is marked on the object),
// and a hop routed again before the end of the drain keeps its DestinationRule, unmarked.
func TestMeshRouteReconcilerDrainsDestinations(t *testing.T) {
	objs := IstioObjects(Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}, LaneOwner(istioLane()), Hop{Service: "a", LaneReady: true, BaseReady: true})
	c := meshClientBuilder(t).WithObjects(cached(append(member("a", false), objs[0], objs[1], istioLane())...)...).Build()
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	now := t0
	newReconciler := func() *MeshRouteReconciler {
		return &MeshRouteReconciler{Meshes: []Mesh{MeshIstio}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20), Now: func() time.Time { return now }}
	}
	reconcileAt := func(r *MeshRouteReconciler, at time.Duration) reconcile.Result {
		t.Helper()
		now = t0.Add(at)
		res, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(istioLane())})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	dr := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(DestinationRuleGVK)
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "lanes-a"}, u); err != nil {
			t.Fatal(err)
		}
		return u
	}

	if res := reconcileAt(newReconciler(), 0); res.RequeueAfter != DefaultRouteDrain {
		t.Errorf("first reconcile: requeue after %s, want %s", res.RequeueAfter, DefaultRouteDrain)
	}
	if got := meshObjects(t, c); !reflect.DeepEqual(got, []string{"DestinationRule/lanes-a"}) {
		t.Fatalf("after the route went: %v, want only the DestinationRule", got)
	}
	if got := dr().GetAnnotations()[MeshUnroutedAnnotation]; got != t0.Format(time.RFC3339Nano) {
		t.Errorf("DestinationRule marked unrouted since %q, want %q", got, t0.Format(time.RFC3339Nano))
	}
	// A restarted manager (a new reconciler) keeps counting from the mark.
	if res := reconcileAt(newReconciler(), 2*time.Second); res.RequeueAfter != 3*time.Second {
		t.Errorf("2 s later: requeue after %s, want 3s", res.RequeueAfter)
	}
	if got := meshObjects(t, c); len(got) != 1 {
		t.Fatalf("2 s later: %v, want the DestinationRule still there", got)
	}
	if res := reconcileAt(newReconciler(), DefaultRouteDrain); res.RequeueAfter != 0 {
		t.Errorf("after the drain: requeue after %s, want none", res.RequeueAfter)
	}
	if got := meshObjects(t, c); got != nil {
		t.Fatalf("after the drain: %v, want nothing", got)
	}

	// Routed again during the drain: the DestinationRule stays and loses its mark.
	c = meshClientBuilder(t).WithObjects(cached(append(member("a", false), objs[0], objs[1], istioLane())...)...).Build()
	reconcileAt(newReconciler(), 0)
	ro := &rolloutsv1beta1.Rollout{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "rollout-a"}, ro); err != nil {
		t.Fatal(err)
	}
	ro.Status.Phase = rolloutsv1beta1.RolloutPhaseProgressing
	if err := c.Update(t.Context(), ro); err != nil {
		t.Fatal(err)
	}
	canary := member("a", true)[len(member("a", true))-1]
	if err := c.Create(t.Context(), canary); err != nil {
		t.Fatal(err)
	}
	reconcileAt(newReconciler(), time.Second)
	if got := meshObjects(t, c); !reflect.DeepEqual(got, []string{"DestinationRule/lanes-a", "VirtualService/lanes-a"}) {
		t.Fatalf("routed again: %v, want both objects", got)
	}
	if _, marked := dr().GetAnnotations()[MeshUnroutedAnnotation]; marked {
		t.Errorf("routed again: the DestinationRule is still marked unrouted: %v", dr().GetAnnotations())
	}
}

// An istio lane whose tag Istio would refuse as a subset name gets a Warning Event and no route,
// and the reconcile ends without an error (an error would retry it forever, silently).
func TestIstioRouteReconcilerRefusesNonDNSTag(t *testing.T) {
	for _, tag := range []string{"v1.0", "Gray"} {
		t.Run(tag, func(t *testing.T) {
			tr := istioLane()
			tr.Spec.Strategy.RequestHeaderModifier.Set[0].Value = tag
			c := meshClientBuilder(t).WithObjects(cached(append(member("a", true), tr)...)...).Build()
			rec := record.NewFakeRecorder(20)
			r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio}, Client: c, Defaults: DefaultDefaults(), Recorder: rec}
			res, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(tr)})
			if err != nil || !res.IsZero() {
				t.Fatalf("Reconcile = %+v, %v; want no retry and no error", res, err)
			}
			if got := meshObjects(t, c); len(got) != 0 {
				t.Errorf("mesh objects %v, want none", got)
			}
			checkWarnings(t, rec, []string{`Warning LaneMisconfigured istio routes left as they are: lane shop/lane is misconfigured: spec.strategy.requestHeaderModifier.set: Invalid value: "` + tag + `": an istio lane's tag names its DestinationRule subset, which must be a DNS-1123 label`})
		})
	}
}
