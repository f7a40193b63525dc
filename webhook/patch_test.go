package webhook

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// canaryPodJSON is a canary pod of fixture's Deployment as a newer API server might send it:
// fields this binary's k8s.io/api does not know sit in metadata, spec, a container and status.
const canaryPodJSON = `{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"generateName": "a-new-", "labels": {"app": "a", "pod-template-hash": "new", "ASM_TRAFFIC_TAG": "base"},
    "annotations": {"team": "shop"}, "futureMetadataField": {"x": 1},
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a-new", "uid": "u", "controller": true}]},
  "spec": {"containers": [{"name": "a", "image": "a:2", "futureContainerField": true}], "futureSpecField": ["y"]},
  "status": {"futureStatusField": "z"}
}`

func admissionOf(raw []byte, dryRun bool) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Namespace: "shop",
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw},
		DryRun: ptr.To(dryRun),
	}}
}

// checkMetadataOnly applies the response's patch to raw and checks that it only touched labels
// and annotations: everything else is byte-for-byte equal as JSON. It returns the patched object.
func checkMetadataOnly(t *testing.T, raw []byte, resp admission.Response) map[string]any {
	t.Helper()
	for _, op := range operations(t, resp) {
		if !strings.HasPrefix(op.Path, "/metadata/labels") && !strings.HasPrefix(op.Path, "/metadata/annotations") {
			t.Errorf("patch touches %s %s, which is neither a label nor an annotation", op.Operation, op.Path)
		}
		if op.Operation != "add" && op.Operation != "replace" && op.Operation != "remove" {
			t.Errorf("patch operation %q", op.Operation)
		}
	}
	ops := resp.Patch
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatalf("decode patch %s: %v", ops, err)
	}
	patched, err := patch.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", ops, err)
	}
	var before, after map[string]any
	if err := json.Unmarshal(raw, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(patched, &after); err != nil {
		t.Fatal(err)
	}
	strip := func(o map[string]any) map[string]any {
		c := map[string]any{}
		for k, v := range o {
			c[k] = v
		}
		if md, ok := c["metadata"].(map[string]any); ok {
			m := map[string]any{}
			for k, v := range md {
				if k != "labels" && k != "annotations" {
					m[k] = v
				}
			}
			c["metadata"] = m
		}
		return c
	}
	if diff := cmp.Diff(strip(before), strip(after)); diff != "" {
		t.Errorf("the patch changed more than labels and annotations (-before +after):\n%s", diff)
	}
	return after
}

func TestPatchTouchesOnlyLabelsAndAnnotations(t *testing.T) {
	objs := fixture("gray")
	h, _, _ := handler(t, objs)
	h.Resolver.Defaults.Dialects = append(h.Resolver.Defaults.Dialects, trafficrouting.DialectASM)
	resp := h.Handle(t.Context(), admissionOf([]byte(canaryPodJSON), false))
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("allowed %v patch %q, want the canary stamped", resp.Allowed, resp.Patch)
	}
	after := checkMetadataOnly(t, []byte(canaryPodJSON), resp)
	md := after["metadata"].(map[string]any)
	wantLabels := map[string]any{"app": "a", "pod-template-hash": "new", "ASM_TRAFFIC_TAG": "gray",
		"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}
	if diff := cmp.Diff(wantLabels, md["labels"]); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	wantAnnotations := map[string]any{"team": "shop",
		trafficrouting.ManagedLabelsAnnotation:  "ASM_TRAFFIC_TAG,alicloud.service.tag,opensergo.io/canary-gray",
		trafficrouting.OriginalLabelsAnnotation: `{"ASM_TRAFFIC_TAG":"base"}`}
	if diff := cmp.Diff(wantAnnotations, md["annotations"]); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

func TestDryRunAdmissionRecordsNoEvent(t *testing.T) {
	h, obs, rec := handler(t, fixture("")) // a lane whose tag cannot be determined
	raw := []byte(canaryPodJSON)
	resp := h.Handle(t.Context(), admissionOf(raw, true))
	if !resp.Allowed || len(resp.Warnings) != 1 {
		t.Fatalf("allowed %v warnings %q, want the pod admitted with the lane's warning", resp.Allowed, resp.Warnings)
	}
	select {
	case e := <-rec.Events:
		t.Errorf("a dry-run admission recorded Event %q (the webhook declares sideEffects: None)", e)
	default:
	}
	if obs.outcomes[OutcomeMisconfigured] != 1 {
		t.Errorf("observer %+v", obs)
	}
	// The same admission for real records the Event.
	h.Handle(t.Context(), admissionOf(raw, false))
	select {
	case <-rec.Events:
	default:
		t.Error("no Event for the real admission")
	}
}

func TestMetadataPatchEscapesKeysAndCreatesMaps(t *testing.T) {
	change := trafficrouting.LabelChange{Set: map[string]string{"opensergo.io/canary-gray": "gray", "a~b": "1"}, Managed: "a~b,opensergo.io/canary-gray"}
	ops := metadataOps(t, map[string]string{"app": "a"}, nil, change)
	var paths []string
	for _, op := range ops {
		paths = append(paths, op.Operation+" "+op.Path)
	}
	want := []string{"add /metadata/labels/a~0b", "add /metadata/labels/opensergo.io~1canary-gray", "add /metadata/annotations"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
}

func TestEscapePointer(t *testing.T) {
	for key, want := range map[string]string{
		"app":                      "app",
		"opensergo.io/canary-gray": "opensergo.io~1canary-gray",
		"a~b":                      "a~0b",
		// "~" is escaped before "/", so an escaped "/" is not read back as "~" then "1".
		"x~1/y": "x~01~1y",
		"~/":    "~0~1",
		"":      "",
	} {
		if got := escapePointer(key); got != want {
			t.Errorf("escapePointer(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestMetadataPatchMakesTheChange applies appendMetadataPatch's operations to objects with many
// combinations of labels and bookkeeping annotations (maps absent, empty or full; keys that need
// escaping; labels managed, taken over, given back) and checks that the result is what
// LabelChange.Apply makes of the same object, and that each map's keys are patched in sorted order.
func TestMetadataPatchMakesTheChange(t *testing.T) {
	keys := []string{"app", "alicloud.service.tag", "opensergo.io/canary-gray", "a~b", "ASM_TRAFFIC_TAG"}
	values := []string{"gray", "base", "x"}
	rng := rand.New(rand.NewPCG(3, 4))
	randomMap := func() map[string]string {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return map[string]string{}
		}
		m := map[string]string{}
		for _, k := range keys {
			if rng.IntN(2) == 0 {
				m[k] = values[rng.IntN(len(values))]
			}
		}
		return m
	}
	for range 2000 {
		labels, desired := randomMap(), randomMap()
		var annotations map[string]string
		if rng.IntN(3) > 0 {
			annotations = map[string]string{"team": "shop"}
			var managed []string
			for _, k := range keys {
				if rng.IntN(3) == 0 {
					managed = append(managed, k)
				}
			}
			annotations[trafficrouting.ManagedLabelsAnnotation] = strings.Join(managed, ",")
			if rng.IntN(2) == 0 && len(managed) > 0 {
				annotations[trafficrouting.OriginalLabelsAnnotation] = `{"` + managed[0] + `":"orig"}`
			}
		}
		change := trafficrouting.LabelChanges(labels, annotations, desired)
		want := &metav1.ObjectMeta{Labels: maps.Clone(labels), Annotations: maps.Clone(annotations)}
		change.Apply(want)
		ops := metadataOps(t, labels, annotations, change)
		// The handler patches only a change that is not empty (IsEmpty, checked first), and sends
		// whatever operations it has: there must be one. (An empty change may still have one,
		// removing a bookkeeping annotation left empty; the handler leaves such a pod alone.)
		if !change.IsEmpty(annotations) && len(ops) == 0 {
			t.Errorf("labels %v, annotations %v, change %+v: not empty, but no operation", labels, annotations, change)
		}
		last := map[string]string{} // map path -> last key patched
		for _, op := range ops {
			for _, m := range []string{"/metadata/labels/", "/metadata/annotations/"} {
				if key, ok := strings.CutPrefix(op.Path, m); ok {
					if key < last[m] {
						t.Errorf("operations out of order: %s after %s%s", op.Path, m, last[m])
					}
					last[m] = key
				}
			}
		}
		// The object as the API server sends it: a map that is there, even empty, is in the JSON.
		metadata := map[string]any{}
		if labels != nil {
			metadata["labels"] = labels
		}
		if annotations != nil {
			metadata["annotations"] = annotations
		}
		doc, err := json.Marshal(map[string]any{"metadata": metadata})
		if err != nil {
			t.Fatal(err)
		}
		patched := doc
		if len(ops) > 0 {
			raw, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			patch, err := jsonpatch.DecodePatch(raw)
			if err != nil {
				t.Fatal(err)
			}
			if patched, err = patch.Apply(doc); err != nil {
				t.Fatalf("apply %s to %s: %v", raw, doc, err)
			}
		}
		var got struct{ Metadata metav1.ObjectMeta }
		if err := json.Unmarshal(patched, &got); err != nil {
			t.Fatal(err)
		}
		// Apply leaves an empty map where JSON leaves none: compare contents.
		if diff := cmp.Diff(want.Labels, got.Metadata.Labels, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("labels %v, change %+v: patched labels differ from Apply's (-apply +patch):\n%s", labels, change, diff)
		}
		if diff := cmp.Diff(want.Annotations, got.Metadata.Annotations, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("annotations %v, change %+v: patched annotations differ from Apply's (-apply +patch):\n%s", annotations, change, diff)
		}
	}
}
