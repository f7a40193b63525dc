package trafficrouting

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// planMesh writes what is missing or changed, leaves what is up to date, and removes what is no
// longer wanted, routes first.
func TestPlanMesh(t *testing.T) {
	obj := func(gvk schema.GroupVersionKind, name, host string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"host": host}}}
		u.SetGroupVersionKind(gvk)
		u.SetName(name)
		return u
	}
	stored := func(u *unstructured.Unstructured) *unstructured.Unstructured {
		s := u.DeepCopy()
		hash, err := specHash(s)
		if err != nil {
			t.Fatal(err)
		}
		s.SetAnnotations(map[string]string{MeshSpecHashAnnotation: hash})
		return s
	}
	same := obj(DestinationRuleGVK, "lanes-a", "a")
	changed := obj(VirtualServiceGVK, "lanes-a", "a")
	existing := []*unstructured.Unstructured{
		obj(DestinationRuleGVK, "lanes-gone", "gone"), // listed before its route: still goes after it
		stored(same),
		stored(obj(VirtualServiceGVK, "lanes-a", "old")),
		obj(VirtualServiceGVK, "lanes-gone", "gone"),
	}
	desired := []*unstructured.Unstructured{same.DeepCopy(), changed, obj(VirtualServiceGVK, "lanes-b", "b")}
	plan, err := planMesh(existing, desired, []schema.GroupVersionKind{VirtualServiceGVK, DestinationRuleGVK})
	if err != nil {
		t.Fatal(err)
	}
	type write struct{ Key, Hash, Current string }
	var writes []write
	for _, w := range plan.writes {
		cur := ""
		if w.current != nil {
			cur = w.current.Object["spec"].(map[string]any)["host"].(string)
		}
		writes = append(writes, write{objectKey(w.want), w.want.GetAnnotations()[MeshSpecHashAnnotation], cur})
	}
	hashOf := func(u *unstructured.Unstructured) string { return stored(u).GetAnnotations()[MeshSpecHashAnnotation] }
	wantWrites := []write{
		{"VirtualService/lanes-a", hashOf(changed), "old"},
		{"VirtualService/lanes-b", hashOf(obj(VirtualServiceGVK, "lanes-b", "b")), ""},
	}
	if diff := cmp.Diff(wantWrites, writes); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	var unwanted []string
	for _, u := range plan.unwanted {
		unwanted = append(unwanted, objectKey(u))
	}
	if diff := cmp.Diff([]string{"VirtualService/lanes-gone", "DestinationRule/lanes-gone"}, unwanted); diff != "" {
		t.Errorf("unwanted (-want +got):\n%s", diff)
	}
}
