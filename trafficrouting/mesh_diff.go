package trafficrouting

// Diff: which of a lane's mesh objects to write and which to remove, decided from the objects the
// lane has and the objects it wants, without the API server.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// MeshSpecHashAnnotation holds, on every mesh object Kruise Lanes writes, a hash of the spec it
// wrote (see upToDate).
const MeshSpecHashAnnotation = AnnotationPrefix + "spec-hash"

// meshWrite is one object to write: want, stamped with its spec hash, created when current (the
// object of that name the lane has) is nil and updated from it otherwise.
type meshWrite struct {
	want, current *unstructured.Unstructured
}

// meshPlan is what a reconcile changes in a lane's mesh objects.
type meshPlan struct {
	// writes are the wanted objects that are missing or not up to date, in the order wanted.
	writes []meshWrite
	// unwanted are the lane's objects no longer wanted, in deletion order: by kind as kinds lists
	// them (routes first), then as the lane has them.
	unwanted []*unstructured.Unstructured
}

// planMesh compares the mesh objects a lane has (existing) with those it wants now (desired): a
// wanted object is written unless the one it has is upToDate, and an object it has that is no
// longer wanted is removed. It stamps every desired object with MeshSpecHashAnnotation.
func planMesh(existing, desired []*unstructured.Unstructured, kinds []schema.GroupVersionKind) (meshPlan, error) {
	var plan meshPlan
	have := make(map[string]*unstructured.Unstructured, len(existing))
	for _, obj := range existing {
		have[objectKey(obj)] = obj
	}
	wanted := map[string]bool{}
	for _, obj := range desired {
		wanted[objectKey(obj)] = true
		hash, err := specHash(obj)
		if err != nil {
			return meshPlan{}, err
		}
		obj.SetAnnotations(map[string]string{MeshSpecHashAnnotation: hash})
		current := have[objectKey(obj)]
		if current != nil && upToDate(current, obj, hash) {
			continue
		}
		plan.writes = append(plan.writes, meshWrite{want: obj, current: current})
	}
	for _, gvk := range kinds {
		for _, obj := range existing {
			if obj.GroupVersionKind().GroupKind() == gvk.GroupKind() && !wanted[objectKey(obj)] {
				plan.unwanted = append(plan.unwanted, obj)
			}
		}
	}
	return plan, nil
}

// isRouteKind reports the kinds that route (and so go first): VirtualService and HTTPRoute.
func isRouteKind(gvk schema.GroupVersionKind) bool {
	return gvk.GroupKind() == VirtualServiceGVK.GroupKind() || gvk.GroupKind() == HTTPRouteGVK.GroupKind()
}

func objectKey(u *unstructured.Unstructured) string { return u.GetKind() + "/" + u.GetName() }

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
