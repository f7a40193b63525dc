package trafficrouting

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func gatewayHop(ports ...corev1.ServicePort) Hop {
	return Hop{Service: "b", Selector: map[string]string{"app": "b"}, Ports: ports, LaneReady: true, BaseReady: true}
}

var httpPort = corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}

func TestGatewayObjectsServices(t *testing.T) {
	lane := Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}
	tr := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lane", UID: types.UID("uid-1")}}
	objs, err := GatewayObjects(lane, LaneOwner(tr), gatewayHop(httpPort, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
		if o.GetLabels()[ManagedByLabel] != ManagedByValue || o.GetLabels()[MeshLaneLabel] != "lane" || o.GetLabels()[MeshServiceLabel] != "b" {
			t.Errorf("%s/%s labels %v", o.GetKind(), o.GetName(), o.GetLabels())
		}
		if refs := o.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != "uid-1" {
			t.Errorf("%s/%s owners %v", o.GetKind(), o.GetName(), refs)
		}
	}
	// The UDP port has no route; one TCP port means the route is named after the Service alone.
	if diff := cmp.Diff([]string{"Service/b-base", "Service/b-gray", "HTTPRoute/lanes-b"}, names); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	for i, tag := range []string{"base", "gray"} {
		svc := &corev1.Service{}
		if err := runtimeFromUnstructured(objs[i], svc); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]string{"app": "b", LabelLanes: tag}, svc.Spec.Selector); diff != "" {
			t.Errorf("%s selector (-want +got):\n%s", svc.Name, diff)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 {
			t.Errorf("%s ports %+v, want only 80 -> 8080", svc.Name, svc.Spec.Ports)
		}
	}
}

func runtimeFromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

func TestGatewayObjectsRoute(t *testing.T) {
	lane := Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}
	owner := LaneOwner(&rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Name: "lane", UID: "u"}})
	backend := func(name string) any {
		return map[string]any{"group": "", "kind": "Service", "name": name, "port": int64(80)}
	}
	laneRule := map[string]any{
		"matches":     []any{map[string]any{"headers": []any{map[string]any{"type": "Exact", "name": "x-mse-tag", "value": "gray"}}}},
		"backendRefs": []any{backend("b-gray")},
	}
	tests := map[string]struct {
		hop  Hop
		want []any
	}{
		"lane and base Ready":        {hop: Hop{LaneReady: true, BaseReady: true}, want: []any{laneRule, map[string]any{"backendRefs": []any{backend("b-base")}}}},
		"lane not Ready":             {hop: Hop{BaseReady: true}, want: []any{map[string]any{"backendRefs": []any{backend("b-base")}}}},
		"no base Ready (last batch)": {hop: Hop{LaneReady: true}, want: []any{laneRule, map[string]any{"backendRefs": []any{backend("b")}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hop := tc.hop
			hop.Service, hop.Selector, hop.Ports = "b", map[string]string{"app": "b"}, []corev1.ServicePort{httpPort}
			objs, err := GatewayObjects(lane, owner, hop)
			if err != nil {
				t.Fatal(err)
			}
			route := objs[2]
			if route.GetAPIVersion() != "gateway.networking.k8s.io/v1" || route.GetKind() != "HTTPRoute" {
				t.Fatalf("route is %s %s", route.GetAPIVersion(), route.GetKind())
			}
			parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
			if diff := cmp.Diff([]any{backend("b")}, parents); diff != "" {
				t.Errorf("parentRefs (-want +got):\n%s", diff)
			}
			rules, _, _ := unstructured.NestedSlice(route.Object, "spec", "rules")
			if diff := cmp.Diff(tc.want, rules); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGatewayObjectsErrors(t *testing.T) {
	owner := LaneOwner(&rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Name: "lane", UID: "u"}})
	long := strings.Repeat("s", 60)
	tests := map[string]struct {
		lane Lane
		hop  Hop
		want string
	}{
		"lane Service name too long": {
			lane: Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"},
			hop:  Hop{Service: long, Ports: []corev1.ServicePort{httpPort}},
			want: `the lane Service name "` + long + `-gray" is not valid`,
		},
		"no TCP port": {
			lane: Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"},
			hop:  Hop{Service: "b", Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}}},
			want: "service b has no TCP port an HTTPRoute can route",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := GatewayObjects(tc.lane, owner, tc.hop)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestGatewayObjectsMultiplePorts(t *testing.T) {
	lane := Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}
	owner := LaneOwner(&rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Name: "lane", UID: "u"}})
	objs, err := GatewayObjects(lane, owner, gatewayHop(httpPort, corev1.ServicePort{Name: "admin", Port: 9090}))
	if err != nil {
		t.Fatal(err)
	}
	// One route per port, each attached to that port and sending to the same port of the backends.
	var got []string
	for _, o := range objs[2:] {
		parents, _, _ := unstructured.NestedSlice(o.Object, "spec", "parentRefs")
		rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
		backends, _, _ := unstructured.NestedSlice(rules[len(rules)-1].(map[string]any), "backendRefs")
		got = append(got, fmt.Sprintf("%s parent:%v backend:%v", o.GetName(), parents[0].(map[string]any)["port"], backends[0].(map[string]any)["port"]))
	}
	if diff := cmp.Diff([]string{"lanes-b-80 parent:80 backend:80", "lanes-b-9090 parent:9090 backend:9090"}, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

func gatewayLane() *rolloutsv1alpha1.TrafficRouting {
	tr := trafficRouting(map[string]string{AnnotationMesh: "gateway-api"}, header("x-mse-tag", "gray"))
	tr.Name = "lane"
	tr.UID = "uid-lane"
	return tr
}

// gatewayMember is member with the lanes dialect's label instead of Istio's and an HTTP port.
func gatewayMember(name string, releasing bool) []client.Object {
	objs := member(name, releasing)
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Pod:
			v.Labels[LabelLanes] = v.Labels[LabelIstio]
			delete(v.Labels, LabelIstio)
		case *corev1.Service:
			v.Spec.Ports = []corev1.ServicePort{httpPort}
		}
	}
	return objs
}

func TestMeshRouteReconcilerGatewayAPI(t *testing.T) {
	userRoute := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"namespace": "shop", "name": "users-own"},
		"spec":     map[string]any{"parentRefs": []any{map[string]any{"group": "", "kind": "Service", "name": "c"}}},
	}}
	tests := map[string]struct {
		objs       []client.Object
		want       []string
		wantEvents []string
	}{
		"releasing members get lane Services and an HTTPRoute, B none": {
			objs: append(append(gatewayMember("a", true), gatewayMember("b", false)...), gatewayMember("c", true)...),
			want: []string{"HTTPRoute/lanes-a", "HTTPRoute/lanes-c", "Service/a-base", "Service/a-gray", "Service/c-base", "Service/c-gray"},
		},
		"a user's HTTPRoute on c: c is left alone": {
			objs:       append(append(gatewayMember("a", true), gatewayMember("c", true)...), userRoute),
			want:       []string{"HTTPRoute/lanes-a", "HTTPRoute/users-own", "Service/a-base", "Service/a-gray"},
			wantEvents: []string{"Warning LaneRouteConflict service c is routed by HTTPRoute users-own"},
		},
		"an HTTPRoute of the route's name that Kruise Lanes did not write: left as it is": {
			objs: append(gatewayMember("a", true), &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
				"metadata": map[string]any{"namespace": "shop", "name": "lanes-a"},
				"spec":     map[string]any{"parentRefs": []any{map[string]any{"name": "public"}}},
			}}),
			want:       []string{"HTTPRoute/lanes-a", "Service/a-base", "Service/a-gray"},
			wantEvents: []string{"Warning LaneRouteConflict HTTPRoute lanes-a exists and Kruise Lanes did not write it"},
		},
		"a Service named like a lane Service that Kruise Lanes did not write: a is left alone": {
			objs: append(gatewayMember("a", true),
				&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a-gray"}}),
			want:       []string{"Service/a-gray"},
			wantEvents: []string{"Warning LaneRouteConflict service a is routed by Service a-gray"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := meshClientBuilder(t).WithObjects(cached(append(tc.objs, gatewayLane())...)...).Build()
			rec := record.NewFakeRecorder(50)
			r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: rec}
			if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(gatewayLane())}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, gatewayObjects(t, c)); diff != "" {
				t.Errorf("gateway objects (-want +got):\n%s", diff)
			}
			checkWarnings(t, rec, tc.wantEvents)
			// A second reconcile with nothing changed writes nothing.
			before := resourceVersions(t, c)
			if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(gatewayLane())}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, resourceVersions(t, c)); diff != "" {
				t.Errorf("second reconcile rewrote objects (-before +after):\n%s", diff)
			}
		})
	}
}

func TestMeshRouteReconcilerMeshNotInstalled(t *testing.T) {
	c := meshClientBuilder(t).WithObjects(cached(append(gatewayMember("a", true), gatewayLane())...)...).Build()
	rec := record.NewFakeRecorder(10)
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio}, Client: c, Defaults: DefaultDefaults(), Recorder: rec}
	if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(gatewayLane())}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-rec.Events:
		want := "Warning LaneMisconfigured the lane asks for gateway-api routes but the API server does not serve HTTPRoutes (gateway.networking.k8s.io)"
		if !strings.HasPrefix(e, want) {
			t.Errorf("event %q, want prefix %q", e, want)
		}
	default:
		t.Error("no Event for a lane whose mesh is not installed")
	}
}

// gatewayObjects lists the HTTPRoutes and the Services Kruise Lanes wrote, and every HTTPRoute.
func gatewayObjects(t *testing.T, c client.Client) []string {
	t.Helper()
	var out []string
	routes := &unstructured.UnstructuredList{}
	routes.SetGroupVersionKind(HTTPRouteGVK.GroupVersion().WithKind("HTTPRouteList"))
	if err := c.List(t.Context(), routes); err != nil {
		t.Fatal(err)
	}
	for _, u := range routes.Items {
		out = append(out, "HTTPRoute/"+u.GetName())
	}
	services := &corev1.ServiceList{}
	if err := c.List(t.Context(), services); err != nil {
		t.Fatal(err)
	}
	for _, s := range services.Items {
		if s.Labels[ManagedByLabel] == ManagedByValue || strings.Contains(s.Name, "-") {
			out = append(out, "Service/"+s.Name)
		}
	}
	return out
}

func resourceVersions(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	routes := &unstructured.UnstructuredList{}
	routes.SetGroupVersionKind(HTTPRouteGVK.GroupVersion().WithKind("HTTPRouteList"))
	if err := c.List(t.Context(), routes); err != nil {
		t.Fatal(err)
	}
	for _, u := range routes.Items {
		out["HTTPRoute/"+u.GetName()] = u.GetResourceVersion()
	}
	services := &corev1.ServiceList{}
	if err := c.List(t.Context(), services); err != nil {
		t.Fatal(err)
	}
	for _, s := range services.Items {
		out["Service/"+s.Name] = s.ResourceVersion
	}
	return out
}

// apiServerDefaults adds to a stored lane object what the API server adds to what Kruise Lanes
// writes: a Service's cluster IP, type and policies; an HTTPRoute rule's default path match and
// a backend's weight (Gateway API's CRD defaults).
func apiServerDefaults(u *unstructured.Unstructured) {
	spec := u.Object["spec"].(map[string]any)
	switch u.GetKind() {
	case "Service":
		spec["clusterIP"], spec["clusterIPs"] = "10.96.0.10", []any{"10.96.0.10"}
		spec["type"], spec["sessionAffinity"], spec["internalTrafficPolicy"] = "ClusterIP", "None", "Cluster"
		spec["ipFamilies"], spec["ipFamilyPolicy"] = []any{"IPv4"}, "SingleStack"
	case "HTTPRoute":
		for _, r := range spec["rules"].([]any) {
			rule := r.(map[string]any)
			if _, ok := rule["matches"]; !ok {
				rule["matches"] = []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}}
			}
			for _, b := range rule["backendRefs"].([]any) {
				b.(map[string]any)["weight"] = int64(1)
			}
		}
	}
}

// laneObjects returns every object the gateway-api lane wrote, as stored.
func laneObjects(t *testing.T, c client.Client) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, gvk := range []schema.GroupVersionKind{HTTPRouteGVK, ServiceGVK} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(t.Context(), list, client.MatchingLabels{ManagedByLabel: ManagedByValue}); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
	}
	return out
}

func TestMeshRouteReconcilerKeepsAPIServerDefaults(t *testing.T) {
	c := meshClientBuilder(t).WithObjects(cached(append(gatewayMember("a", true), gatewayLane())...)...).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
	req := meshRequest{Lane: client.ObjectKeyFromObject(gatewayLane())}
	if _, err := r.Reconcile(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	objs := laneObjects(t, c)
	if len(objs) != 3 {
		t.Fatalf("%d lane objects, want an HTTPRoute and 2 Services", len(objs))
	}
	for _, u := range objs {
		apiServerDefaults(u)
		if err := c.Update(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	before := resourceVersions(t, c)
	if _, err := r.Reconcile(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, resourceVersions(t, c)); diff != "" {
		t.Errorf("defaulted objects rewritten while nothing changed (-before +after):\n%s", diff)
	}
}

// A key or list element of the stored route that the desired route no longer has is a change:
// here a RequestMirror filter, and with it a backendRef, that an earlier write had.
func TestMeshRouteReconcilerDropsBackendRef(t *testing.T) {
	lane := Lane{Namespace: "shop", Name: "lane", Tag: "gray", Header: "x-mse-tag"}
	hop := Hop{Service: "a", LaneReady: true, BaseReady: true, Selector: map[string]string{"app": "a"}, Ports: []corev1.ServicePort{httpPort}}
	desired, err := GatewayObjects(lane, LaneOwner(gatewayLane()), hop)
	if err != nil {
		t.Fatal(err)
	}
	// The route as an earlier write left it (and the API server defaulted it): the default rule
	// also mirrored to a-gray.
	earlier := desired[2].DeepCopy()
	rules, _, _ := unstructured.NestedSlice(earlier.Object, "spec", "rules")
	rules[1].(map[string]any)["filters"] = []any{map[string]any{"type": "RequestMirror", "requestMirror": map[string]any{
		"backendRef": map[string]any{"group": "", "kind": "Service", "name": "a-gray", "port": int64(80)},
	}}}
	if err := unstructured.SetNestedSlice(earlier.Object, rules, "spec", "rules"); err != nil {
		t.Fatal(err)
	}
	hash, err := specHash(earlier)
	if err != nil {
		t.Fatal(err)
	}
	earlier.SetAnnotations(map[string]string{MeshSpecHashAnnotation: hash})
	apiServerDefaults(earlier)

	c := meshClientBuilder(t).WithObjects(cached(append(gatewayMember("a", true), gatewayLane(), earlier)...)...).Build()
	r := &MeshRouteReconciler{Meshes: []Mesh{MeshIstio, MeshGatewayAPI}, Client: c, Defaults: DefaultDefaults(), Recorder: record.NewFakeRecorder(20)}
	if _, err := r.Reconcile(t.Context(), meshRequest{Lane: client.ObjectKeyFromObject(gatewayLane())}); err != nil {
		t.Fatal(err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(HTTPRouteGVK)
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(earlier), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(desired[2].Object["spec"], got.Object["spec"]); diff != "" {
		t.Errorf("route spec (-want +got):\n%s", diff)
	}
}
