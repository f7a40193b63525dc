package trafficrouting

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// MeshRouteReconciler writes the east-west routes of istio and gateway-api lanes: for every
// member Service of a releasing member, the objects IstioObjects or GatewayObjects renders, owned
// by the TrafficRouting. It is level-based: each reconcile of a lane computes every object from
// the members, Services and pods, writes what differs and deletes what it wrote that is no longer
// wanted, so a hop's lane route goes as soon as its last Ready lane pod does, and a lane with no
// releasing member (or that changed mesh) has no objects left. A member stops releasing as soon as
// Kruise starts finalising or cancelling it, so its routes go before Kruise promotes or rolls back
// its pods. An object for a member's host that Kruise Lanes did not write is never touched: the
// hop is skipped and a Warning Event on the TrafficRouting says why.
type MeshRouteReconciler struct {
	Client   client.Client
	Defaults Defaults
	Recorder record.EventRecorder
	// CloneSets is true where apps.kruise.io CloneSets are installed.
	CloneSets bool
	// Meshes are the meshes whose CRDs are installed; SetupWithManager fills it from the API
	// server's discovery when empty. A lane of another mesh gets a Warning Event and no routes.
	Meshes []Mesh
	// RouteDrain is how long what a route sends to (a DestinationRule, a lane or base Service)
	// outlives the route once both are no longer wanted; zero means DefaultRouteDrain.
	RouteDrain time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultRouteDrain is the default MeshRouteReconciler.RouteDrain. A mesh's data plane learns a
// route and its destinations in separate updates (xDS RDS and CDS), in either order: deleting a
// DestinationRule in the same moment as the VirtualService that names its subsets lets a client
// route to a subset it has just been told is gone ("cluster not found"). So the destinations go
// a few seconds after the route, when every client has long dropped it.
const DefaultRouteDrain = 5 * time.Second

// MeshUnroutedAnnotation marks a destination object (DestinationRule, lane or base Service)
// whose route is gone, with the time it was first seen so (RFC 3339): it is deleted once
// RouteDrain has passed since. The mark lives on the object, so a restart or a failover keeps the
// drain; an object wanted again loses it.
const MeshUnroutedAnnotation = AnnotationPrefix + "unrouted-since"

// isRouteKind reports the kinds that route (and so go first): VirtualService and HTTPRoute.
func isRouteKind(gvk schema.GroupVersionKind) bool {
	return gvk.GroupKind() == VirtualServiceGVK.GroupKind() || gvk.GroupKind() == HTTPRouteGVK.GroupKind()
}

func (r *MeshRouteReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *MeshRouteReconciler) routeDrain() time.Duration {
	if r.RouteDrain > 0 {
		return r.RouteDrain
	}
	return DefaultRouteDrain
}

// Reconcile brings one lane's mesh objects to what its members need now.
func (r *MeshRouteReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx).WithName("mesh-routes")
	tr := &rolloutsv1alpha1.TrafficRouting{}
	if err := r.Client.Get(ctx, req.NamespacedName, tr); err != nil {
		// A deleted lane's objects go with it (owner references).
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	existing, err := r.ownedObjects(ctx, tr)
	if err != nil {
		return reconcile.Result{}, err
	}
	var desired []*unstructured.Unstructured
	mesh, err := MeshOf(tr)
	if err != nil {
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured", "mesh routes left as they are: %v", err)
		return reconcile.Result{}, nil
	}
	if flavor, ok := flavorOf(mesh); ok && tr.DeletionTimestamp.IsZero() {
		if !slices.Contains(r.Meshes, mesh) {
			r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured",
				"the lane asks for %s routes but the API server does not serve %s; install them and restart lanes-manager", mesh, kindNames(flavor.kinds))
			return reconcile.Result{}, nil
		}
		lane, err := Resolve(tr, r.Defaults)
		if err != nil {
			// A broken lane keeps the routes it has; the webhook's Events say what to change.
			r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneMisconfigured", "%s routes left as they are: %v", mesh, err)
			return reconcile.Result{}, nil
		}
		hops, err := r.hops(ctx, tr, lane, flavor)
		if err != nil {
			return reconcile.Result{}, err
		}
		for _, hop := range hops {
			objs, err := flavor.render(lane, LaneOwner(tr), hop)
			if err != nil {
				r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteInvalid", "no lane route for %v", err)
				continue
			}
			desired = append(desired, objs...)
		}
	}

	have := make(map[string]*unstructured.Unstructured, len(existing))
	for _, obj := range existing {
		have[objectKey(obj)] = obj
	}
	wanted := map[string]bool{}
	for _, obj := range desired {
		wanted[objectKey(obj)] = true
		if err := r.write(ctx, tr, obj, have[objectKey(obj)]); err != nil {
			return reconcile.Result{}, err
		}
	}
	// Routes go before what they route to, by RouteDrain: a client never holds a route that
	// names a subset or backend that is gone.
	var requeue time.Duration
	for _, gvk := range r.ownedKinds() {
		for _, obj := range existing {
			if obj.GroupVersionKind().GroupKind() != gvk.GroupKind() || wanted[objectKey(obj)] {
				continue
			}
			if !isRouteKind(gvk) {
				wait, err := r.drain(ctx, obj)
				if err != nil {
					return reconcile.Result{}, err
				}
				if wait > 0 {
					if requeue == 0 || wait < requeue {
						requeue = wait
					}
					continue
				}
			}
			if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: ptrUID(obj.GetUID())}); err != nil && !apierrors.IsNotFound(err) {
				return reconcile.Result{}, fmt.Errorf("delete %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
			}
			log.Info("lane route deleted", "lane", req, "kind", gvk.Kind, "name", obj.GetName())
			r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteDeleted", "deleted %s %s", gvk.Kind, obj.GetName())
		}
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// drain returns how long the destination object obj, no longer wanted, must still wait before it
// is deleted: it marks the object unrouted the first time (MeshUnroutedAnnotation), and returns
// zero once RouteDrain has passed since the mark.
func (r *MeshRouteReconciler) drain(ctx context.Context, obj *unstructured.Unstructured) (time.Duration, error) {
	now := r.now()
	if since, err := time.Parse(time.RFC3339Nano, obj.GetAnnotations()[MeshUnroutedAnnotation]); err == nil {
		if left := r.routeDrain() - now.Sub(since); left > 0 {
			return left, nil
		}
		return 0, nil
	}
	marked := obj.DeepCopy()
	annotations := marked.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[MeshUnroutedAnnotation] = now.UTC().Format(time.RFC3339Nano)
	marked.SetAnnotations(annotations)
	if err := r.Client.Patch(ctx, marked, client.MergeFrom(obj)); err != nil {
		return 0, client.IgnoreNotFound(fmt.Errorf("mark %s %s/%s unrouted: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err))
	}
	return r.routeDrain(), nil
}

// ownedKinds are the kinds of every installed mesh, in deletion order: routes first.
func (r *MeshRouteReconciler) ownedKinds() []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, m := range allMeshes {
		if f, ok := flavorOf(m); ok && slices.Contains(r.Meshes, m) {
			out = append(out, f.kinds...)
		}
	}
	return out
}

func kindNames(gvks []schema.GroupVersionKind) string {
	names := make([]string, 0, len(gvks))
	for _, gvk := range gvks {
		if gvk.Group != "" {
			names = append(names, gvk.Kind+"s ("+gvk.Group+")")
		}
	}
	return strings.Join(names, " and ")
}

func ptrUID(uid types.UID) *types.UID { return &uid }

func objectKey(u *unstructured.Unstructured) string { return u.GetKind() + "/" + u.GetName() }

// hops gathers the member Services of the lane's releasing members and whether each has Ready
// lane and base pods. Services for which a mesh object Kruise Lanes did not write for this lane
// is in the way are left out, with a Warning Event.
//
// Every pod event of a namespace reconciles its mesh lanes, so this stays linear in the objects
// of the namespace: Services are indexed by one pair of their selector, each pod and each pod
// template is matched only against the Services that pair names, and objects read from the cache
// are not copied (they are only read).
func (r *MeshRouteReconciler) hops(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, lane Lane, flavor meshFlavor) ([]Hop, error) {
	rollouts := &rolloutsv1beta1.RolloutList{}
	if err := r.Client.List(ctx, rollouts, client.InNamespace(tr.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list rollouts in %s: %w", tr.Namespace, err)
	}
	services := &corev1.ServiceList{}
	if err := r.Client.List(ctx, services, client.InNamespace(tr.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list services in %s: %w", tr.Namespace, err)
	}
	index := indexServices(services.Items)

	// The member Services, each once, in the order their Rollouts name them.
	var candidates []*corev1.Service
	seen := map[string]bool{}
	for i := range rollouts.Items {
		ro := &rollouts.Items[i]
		if ro.Annotations[TrafficRoutingAnnotation] != tr.Name || !Routable(ro) {
			continue
		}
		template, err := r.templateLabels(ctx, ro)
		if err != nil {
			return nil, err
		}
		for _, svc := range index.selecting(template) {
			if !seen[svc.Name] {
				seen[svc.Name] = true
				candidates = append(candidates, svc)
			}
		}
	}
	if len(candidates) == 0 {
		// Nothing releasing (the usual case for a pod event): no other object needs reading.
		return nil, nil
	}

	foreign, err := r.foreignObjects(ctx, tr, flavor)
	if err != nil {
		return nil, err
	}
	blockers := flavor.blockers(foreign, lane)
	var hops []Hop
	member := map[string]int{} // member Service → its hop
	for _, svc := range candidates {
		if other := blockers[svc.Name]; other != nil {
			r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteConflict",
				"service %s is routed by %s %s, which Kruise Lanes did not write for this lane; its lane route is not written: delete or merge that object", svc.Name, other.GetKind(), other.GetName())
			continue
		}
		member[svc.Name] = len(hops)
		hops = append(hops, Hop{Service: svc.Name, Selector: svc.Spec.Selector, Ports: svc.Spec.Ports})
	}
	if len(hops) == 0 {
		return nil, nil
	}

	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(tr.Namespace), client.HasLabels{flavor.label}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", tr.Namespace, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		value := p.Labels[flavor.label]
		if (value != lane.Tag && value != BaseTag) || !p.DeletionTimestamp.IsZero() || !podReady(p) {
			continue
		}
		for _, svc := range index.selecting(p.Labels) {
			if h, ok := member[svc.Name]; ok {
				if value == lane.Tag {
					hops[h].LaneReady = true
				} else {
					hops[h].BaseReady = true
				}
			}
		}
	}
	return hops, nil
}

// serviceIndex finds the Services whose selector selects a set of labels without trying every
// Service: each Service with a selector is filed under the smallest key of its selector and that
// key's value, which any label set it selects must carry.
type serviceIndex map[string][]*corev1.Service

func indexServices(services []corev1.Service) serviceIndex {
	idx := serviceIndex{}
	for i := range services {
		sel := services[i].Spec.Selector
		if len(sel) == 0 {
			continue
		}
		first := ""
		for k := range sel {
			if first == "" || k < first {
				first = k
			}
		}
		key := first + "=" + sel[first]
		idx[key] = append(idx[key], &services[i])
	}
	return idx
}

// selecting returns the Services whose selector selects labels, each once, in index order.
func (idx serviceIndex) selecting(labels map[string]string) []*corev1.Service {
	var out []*corev1.Service
	for k, v := range labels {
		for _, svc := range idx[k+"="+v] {
			if ServiceSelects(svc.Spec.Selector, labels) {
				out = append(out, svc)
			}
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// templateLabels are the pod template labels of a Rollout's workload.
func (r *MeshRouteReconciler) templateLabels(ctx context.Context, ro *rolloutsv1beta1.Rollout) (map[string]string, error) {
	k, ok := WorkloadKindNamed(ro.Spec.WorkloadRef.Kind)
	if !ok || (k.Optional() && !r.CloneSets) {
		return nil, nil
	}
	key := types.NamespacedName{Namespace: ro.Namespace, Name: ro.Spec.WorkloadRef.Name}
	w := k.New()
	if err := r.Client.Get(ctx, key, w); err != nil {
		return nil, ignoreNotFound(err, strings.ToLower(k.Kind()), key.Namespace, key.Name)
	}
	return k.TemplateLabels(w), nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (r *MeshRouteReconciler) list(ctx context.Context, namespace string, gvk schema.GroupVersionKind, opts ...client.ListOption) ([]*unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := r.Client.List(ctx, list, append(opts, client.InNamespace(namespace))...); err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, namespace, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

// ownedObjects are the mesh objects Kruise Lanes wrote for this lane, of every installed mesh.
func (r *MeshRouteReconciler) ownedObjects(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range r.ownedKinds() {
		// Only read (compared, deleted): not copied out of the cache.
		objs, err := r.list(ctx, tr.Namespace, gvk, client.MatchingLabels{ManagedByLabel: ManagedByValue, MeshLaneLabel: tr.Name}, client.UnsafeDisableDeepCopy)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// foreignObjects are the objects of the mesh's kinds in the lane's namespace that Kruise Lanes did
// not write for this lane.
func (r *MeshRouteReconciler) foreignObjects(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, flavor meshFlavor) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, gvk := range flavor.kinds {
		// Only read: not copied out of the cache.
		objs, err := r.list(ctx, tr.Namespace, gvk, client.UnsafeDisableDeepCopy)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if !IsLaneMeshObject(o, tr.Name) {
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// MeshSpecHashAnnotation holds, on every mesh object Kruise Lanes writes, a hash of the spec it
// wrote (see upToDate).
const MeshSpecHashAnnotation = AnnotationPrefix + "spec-hash"

// write creates the object, or updates it unless current, the object of that name this lane
// already has (nil: none), is up to date with it. It never takes over an object it did not write
// (hops already skips those; this guards the race).
func (r *MeshRouteReconciler) write(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, obj, current *unstructured.Unstructured) error {
	hash, err := specHash(obj)
	if err != nil {
		return err
	}
	obj.SetAnnotations(map[string]string{MeshSpecHashAnnotation: hash})
	if current == nil {
		err := r.Client.Create(ctx, obj)
		if err == nil {
			r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteCreated", "created %s %s%s", obj.GetKind(), obj.GetName(), routeSummary(obj))
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		// Someone else's object, or this lane's own that the cache has not shown yet.
		other := &unstructured.Unstructured{}
		other.SetGroupVersionKind(obj.GroupVersionKind())
		if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), other); err != nil || IsLaneMeshObject(other, tr.Name) {
			return fmt.Errorf("create %s %s/%s: it exists, the cache is behind; retrying", obj.GetKind(), obj.GetNamespace(), obj.GetName())
		}
		r.Recorder.Eventf(tr, corev1.EventTypeWarning, "LaneRouteConflict", "%s %s exists and Kruise Lanes did not write it; left as it is", obj.GetKind(), obj.GetName())
		return nil
	}
	if upToDate(current, obj, hash) {
		return nil
	}
	// The resource version read: an object changed since is a conflict, and the reconcile is retried.
	obj.SetResourceVersion(current.GetResourceVersion())
	if err := r.Client.Update(ctx, obj); err != nil {
		return fmt.Errorf("update %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteUpdated", "updated %s %s%s", obj.GetKind(), obj.GetName(), routeSummary(obj))
	return nil
}

// upToDate reports whether current, a mesh object as the API server stores it, is what Kruise
// Lanes would write now (want, whose spec hashes to hash). The stored spec is not want's spec:
// the API server adds defaults (a Service's clusterIP, an HTTPRoute backend's weight, a rule's
// path match), which are no reason to write it again. So the spec is judged by two tests, each
// blind where the other sees:
//   - the hash of the spec last written (MeshSpecHashAnnotation) equals want's: Kruise Lanes wants
//     what it wrote last, including a key or list element it no longer writes (a route's subset
//     or backendRef) — which a comparison with the stored spec cannot tell from a default;
//   - the stored spec covers want's: nobody changed or removed a value Kruise Lanes wrote.
//
// A destination marked unrouted (MeshUnroutedAnnotation) and wanted again is written again,
// which drops the mark.
//
// A key someone else adds to the spec is thus kept until the spec Kruise Lanes wants changes.
func upToDate(current, want *unstructured.Unstructured, hash string) bool {
	_, unrouted := current.GetAnnotations()[MeshUnroutedAnnotation]
	return !unrouted && current.GetAnnotations()[MeshSpecHashAnnotation] == hash &&
		covers(current.Object["spec"], want.Object["spec"]) &&
		reflect.DeepEqual(current.GetLabels(), want.GetLabels()) &&
		reflect.DeepEqual(current.GetOwnerReferences(), want.GetOwnerReferences())
}

// specHash is the hash of an object's spec that MeshSpecHashAnnotation records.
func specHash(obj *unstructured.Unstructured) (string, error) {
	b, err := appendValue(make([]byte, 0, 512), obj.Object["spec"])
	if err != nil {
		return "", fmt.Errorf("hash the spec of %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// appendValue appends an unstructured value to b unambiguously (a type byte, lengths before
// contents, map keys sorted), without encoding/json's reflection: every reconcile hashes every
// object of the lane.
func appendValue(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case nil:
		b = append(b, '0')
	case bool:
		b = strconv.AppendBool(append(b, 'b'), v)
	case string:
		b = append(binary.AppendUvarint(append(b, 's'), uint64(len(v))), v...)
	case int64:
		b = binary.AppendVarint(append(b, 'i'), v)
	case float64:
		b = binary.BigEndian.AppendUint64(append(b, 'f'), math.Float64bits(v))
	case []any:
		b = binary.AppendUvarint(append(b, 'l'), uint64(len(v)))
		for _, e := range v {
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = binary.AppendUvarint(append(b, 'm'), uint64(len(v)))
		for _, k := range keys {
			b = append(binary.AppendUvarint(b, uint64(len(k))), k...)
			if b, err = appendValue(b, v[k]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("value of type %T is not unstructured", v)
	}
	return b, nil
}

// covers reports whether got holds every value want holds, ignoring keys only got has (see
// upToDate).
func covers(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !covers(g[k], v) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !covers(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

// routeSummary says whether a VirtualService or HTTPRoute carries a lane route.
func routeSummary(obj *unstructured.Unstructured) string {
	var routes []any
	switch obj.GetKind() {
	case VirtualServiceGVK.Kind:
		routes, _, _ = unstructured.NestedSlice(obj.Object, "spec", "http")
	case HTTPRouteGVK.Kind:
		routes, _, _ = unstructured.NestedSlice(obj.Object, "spec", "rules")
	default:
		return ""
	}
	if len(routes) > 1 {
		return " with the lane route"
	}
	return " without a lane route"
}

// SetupWithManager registers the reconciler. It finds which meshes' CRDs the API server serves
// (unless Meshes is set) and watches their kinds. Lanes are reconciled when they change, when
// their mesh objects change, when a member Rollout changes, when a Service changes, and when a pod
// carrying a mesh's lane label changes (readiness, labels, deletion).
func (r *MeshRouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if len(r.Meshes) == 0 {
		for _, m := range allMeshes {
			f, ok := flavorOf(m)
			if ok && servesAll(mgr.GetRESTMapper(), f.kinds) {
				r.Meshes = append(r.Meshes, m)
			}
		}
	}
	mgr.GetLogger().WithName("mesh-routes").Info("meshes served by the API server", "meshes", r.Meshes)
	var labelKeys []string
	for _, m := range allMeshes {
		if f, ok := flavorOf(m); ok {
			labelKeys = append(labelKeys, f.label)
		}
	}
	hasLaneLabel := func(o client.Object) bool {
		for _, k := range labelKeys {
			if _, ok := o.GetLabels()[k]; ok {
				return true
			}
		}
		return false
	}
	// A pod matters while it carries a mesh's lane label, and when it loses it.
	lanePods := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return hasLaneLabel(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return hasLaneLabel(e.ObjectOld) || hasLaneLabel(e.ObjectNew) },
		DeleteFunc:  func(e event.DeleteEvent) bool { return hasLaneLabel(e.Object) },
		GenericFunc: func(e event.GenericEvent) bool { return hasLaneLabel(e.Object) },
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("mesh-routes").
		For(&rolloutsv1alpha1.TrafficRouting{})
	for _, gvk := range r.ownedKinds() {
		if gvk == ServiceGVK {
			continue // every Service is watched below
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		b = b.Owns(u)
	}
	return b.
		Watches(&rolloutsv1beta1.Rollout{}, handler.EnqueueRequestsFromMapFunc(laneOfRollout)).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.lanesInNamespace)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.lanesInNamespace), builder.WithPredicates(lanePods)).
		Complete(r)
}

// servesAll reports whether the API server serves every kind.
func servesAll(mapper meta.RESTMapper, gvks []schema.GroupVersionKind) bool {
	for _, gvk := range gvks {
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return false
		}
	}
	return true
}

func laneOfRollout(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetAnnotations()[TrafficRoutingAnnotation]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

func (r *MeshRouteReconciler) lanesInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &rolloutsv1alpha1.TrafficRoutingList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "list lanes", "namespace", obj.GetNamespace())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if m, err := MeshOf(&list.Items[i]); err == nil && m != MeshNone {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}
