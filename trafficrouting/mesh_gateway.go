package trafficrouting

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// The kinds a gateway-api lane writes: HTTPRoutes at the version Gateway API v1.0+ serves as
// storage, and plain Services for the lane and base endpoints.
var (
	HTTPRouteGVK = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}
	ServiceGVK   = corev1.SchemeGroupVersion.WithKind("Service")
)

// LaneServiceName is the name of the Service that selects a member Service's pods of one lane
// tag (or of base, with BaseTag): <service>-<tag>.
func LaneServiceName(service, tag string) string { return service + "-" + tag }

// HTTPRouteName is the name of the HTTPRoute that routes one port of a member Service: the mesh
// object name for a Service with one port, suffixed with the port number otherwise.
func HTTPRouteName(service string, port int32, ports int) string {
	if ports == 1 {
		return MeshObjectName(service)
	}
	return MeshObjectName(service) + "-" + strconv.Itoa(int(port))
}

// GatewayObjects renders the objects that route one hop of a gateway-api lane (GAMMA), Services
// first: Services <svc>-base and <svc>-<tag> with the member Service's selector and ports plus
// the lanes dialect's base or lane label, and per TCP port of the member Service an HTTPRoute whose
// parent is that Service and port. The route sends "<lane header>: <tag>" to <svc>-<tag> only while
// the hop has Ready lane pods, and everything else to <svc>-base — or, while no base pod is Ready
// (the last batch of a release), to the member Service itself. A backend is thus never routed to
// while it has no Ready pod: fallback holds by construction.
//
// It fails when a name it needs is not a valid Service name (a long Service name plus the tag);
// the caller reports that and writes nothing for the hop.
func GatewayObjects(lane Lane, owner metav1.OwnerReference, hop Hop) ([]*unstructured.Unstructured, error) {
	laneSvc, baseSvc := LaneServiceName(hop.Service, lane.Tag), LaneServiceName(hop.Service, BaseTag)
	for _, name := range []string{laneSvc, baseSvc} {
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			return nil, fmt.Errorf("service %s: the lane Service name %q is not valid (%s); shorten the Service name or the lane tag", hop.Service, name, errs[0])
		}
	}
	objectMeta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Namespace:       lane.Namespace,
			Name:            name,
			Labels:          map[string]string{ManagedByLabel: ManagedByValue, MeshLaneLabel: lane.Name, MeshServiceLabel: hop.Service},
			OwnerReferences: []metav1.OwnerReference{owner},
		}
	}
	var ports []corev1.ServicePort
	for _, p := range hop.Ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			ports = append(ports, corev1.ServicePort{Name: p.Name, Protocol: corev1.ProtocolTCP, AppProtocol: p.AppProtocol, Port: p.Port, TargetPort: p.TargetPort})
		}
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("service %s has no TCP port an HTTPRoute can route", hop.Service)
	}
	var out []*unstructured.Unstructured
	for _, s := range []struct{ name, tag string }{{baseSvc, BaseTag}, {laneSvc, lane.Tag}} {
		selector := map[string]string{LabelLanes: s.tag}
		for k, v := range hop.Selector {
			selector[k] = v
		}
		svc := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: objectMeta(s.name),
			Spec:       corev1.ServiceSpec{Selector: selector, Ports: ports},
		}
		u, err := toUnstructured(svc)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}

	for _, p := range ports {
		backend := func(service string) gatewayv1beta1.HTTPBackendRef {
			return gatewayv1beta1.HTTPBackendRef{BackendRef: gatewayv1beta1.BackendRef{BackendObjectReference: gatewayv1beta1.BackendObjectReference{
				Group: ptr.To(gatewayv1beta1.Group("")),
				Kind:  ptr.To(gatewayv1beta1.Kind("Service")),
				Name:  gatewayv1beta1.ObjectName(service),
				Port:  ptr.To(gatewayv1beta1.PortNumber(p.Port)),
			}}}
		}
		var rules []gatewayv1beta1.HTTPRouteRule
		if hop.LaneReady {
			rules = append(rules, gatewayv1beta1.HTTPRouteRule{
				Matches: []gatewayv1beta1.HTTPRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{{
					Type:  ptr.To(gatewayv1beta1.HeaderMatchExact),
					Name:  gatewayv1beta1.HTTPHeaderName(lane.Header),
					Value: lane.Tag,
				}}}},
				BackendRefs: []gatewayv1beta1.HTTPBackendRef{backend(laneSvc)},
			})
		}
		fallback := hop.Service
		if hop.BaseReady {
			fallback = baseSvc
		}
		rules = append(rules, gatewayv1beta1.HTTPRouteRule{BackendRefs: []gatewayv1beta1.HTTPBackendRef{backend(fallback)}})
		route := &gatewayv1beta1.HTTPRoute{
			ObjectMeta: objectMeta(HTTPRouteName(hop.Service, p.Port, len(ports))),
			Spec: gatewayv1beta1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1beta1.CommonRouteSpec{ParentRefs: []gatewayv1beta1.ParentReference{{
					Group: ptr.To(gatewayv1beta1.Group("")),
					Kind:  ptr.To(gatewayv1beta1.Kind("Service")),
					Name:  gatewayv1beta1.ObjectName(hop.Service),
					Port:  ptr.To(gatewayv1beta1.PortNumber(p.Port)),
				}}},
				Rules: rules,
			},
		}
		u, err := toUnstructured(route)
		if err != nil {
			return nil, err
		}
		u.SetGroupVersionKind(HTTPRouteGVK)
		out = append(out, u)
	}
	return out, nil
}

// toUnstructured converts a typed object and drops its status, which Kruise Lanes never writes.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	delete(m, "status")
	delete(m["metadata"].(map[string]any), "creationTimestamp")
	return &unstructured.Unstructured{Object: m}, nil
}

// HTTPRouteParentServices returns the Services in the given namespace that an HTTPRoute attaches
// to as GAMMA parents (parentRefs of kind Service in the core group).
func HTTPRouteParentServices(u *unstructured.Unstructured) []string {
	refs, _, _ := unstructured.NestedSlice(u.Object, "spec", "parentRefs")
	var out []string
	for _, r := range refs {
		ref, ok := r.(map[string]any)
		if !ok {
			continue
		}
		kind, _ := ref["kind"].(string)
		group, _ := ref["group"].(string)
		ns, _ := ref["namespace"].(string)
		name, _ := ref["name"].(string)
		if kind == "Service" && (group == "" || group == "core") && (ns == "" || ns == u.GetNamespace()) {
			out = append(out, name)
		}
	}
	return out
}
