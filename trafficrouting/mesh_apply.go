package trafficrouting

// Apply: the MeshRouteReconciler's writes to the API server — creating, updating, draining and
// deleting a lane's mesh objects as a meshPlan says — and the Events that report them.

import (
	"context"
	"fmt"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// apply writes what the plan says: every write first, then the unwanted objects go, routes before
// what they route to by RouteDrain, so a client never holds a route that names a subset or
// backend that is gone. It returns how long until a drained object is due.
func (r *MeshRouteReconciler) apply(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, plan meshPlan) (time.Duration, error) {
	log := logf.FromContext(ctx).WithName("mesh-routes")
	for _, w := range plan.writes {
		if err := r.write(ctx, tr, w.want, w.current); err != nil {
			return 0, err
		}
	}
	var requeue time.Duration
	for _, obj := range plan.unwanted {
		gvk := obj.GroupVersionKind()
		if !isRouteKind(gvk) {
			wait, err := r.drain(ctx, obj)
			if err != nil {
				return 0, err
			}
			if wait > 0 {
				if requeue == 0 || wait < requeue {
					requeue = wait
				}
				continue
			}
		}
		r.written.forget(obj)
		if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: ptrUID(obj.GetUID())}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("delete %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
		log.Info("lane route deleted", "lane", client.ObjectKeyFromObject(tr), "kind", gvk.Kind, "name", obj.GetName())
		r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteDeleted", "deleted %s %s", gvk.Kind, obj.GetName())
	}
	return requeue, nil
}

// write creates the object when current, the object of that name this lane already has, is nil,
// and updates current otherwise (planMesh leaves out what is up to date). It never takes over an
// object it did not write (the gathering already skips those; this guards the race).
func (r *MeshRouteReconciler) write(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting, obj, current *unstructured.Unstructured) error {
	// Recorded before it is sent: its watch event can arrive before the response.
	r.written.record(obj)
	if current == nil {
		err := r.Client.Create(ctx, obj)
		if err == nil {
			r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteCreated", "created %s %s%s", obj.GetKind(), obj.GetName(), routeSummary(obj))
			return nil
		}
		r.written.forget(obj)
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
	// The resource version read: an object changed since is a conflict, and the reconcile is retried.
	obj.SetResourceVersion(current.GetResourceVersion())
	if err := r.Client.Update(ctx, obj); err != nil {
		r.written.forget(obj)
		return fmt.Errorf("update %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	r.Recorder.Eventf(tr, corev1.EventTypeNormal, "LaneRouteUpdated", "updated %s %s%s", obj.GetKind(), obj.GetName(), routeSummary(obj))
	return nil
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
	r.written.record(marked)
	if err := r.Client.Patch(ctx, marked, client.MergeFrom(obj)); err != nil {
		r.written.forget(marked)
		return 0, client.IgnoreNotFound(fmt.Errorf("mark %s %s/%s unrouted: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err))
	}
	return r.routeDrain(), nil
}

func ptrUID(uid types.UID) *types.UID { return &uid }

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
