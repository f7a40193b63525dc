package webhook

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// operations are the JSON patch operations a response sends, decoded from its patch; none when it
// sends no patch.
func operations(t testing.TB, resp admission.Response) []jsonpatch.JsonPatchOperation {
	t.Helper()
	if len(resp.Patches) != 0 {
		t.Fatalf("operations %+v left for Complete to marshal", resp.Patches)
	}
	if len(resp.Patch) == 0 {
		return nil
	}
	if resp.PatchType == nil || *resp.PatchType != "JSONPatch" {
		t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
	}
	var ops []jsonpatch.JsonPatchOperation
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatalf("the patch %q is not a list of operations: %v", resp.Patch, err)
	}
	return ops
}

// referenceOps are the operations of a label change as admission.Patched takes them, built the
// plain way (one jsonpatch value per edit; whole maps as Go maps): the oracle appendMetadataPatch
// is checked against.
func referenceOps(labels, annotations map[string]string, c trafficrouting.LabelChange) []jsonpatch.JsonPatchOperation {
	var ops []jsonpatch.JsonPatchOperation
	mapOps := func(path string, current map[string]string, set map[string]string, remove []string) {
		final := map[string]*string{}
		for k, v := range set {
			final[k] = &v
		}
		for _, k := range remove {
			final[k] = nil // a key also set is removed
		}
		keys := slices.Sorted(maps.Keys(final))
		if current == nil {
			whole := map[string]string{}
			for k, v := range final {
				if v != nil {
					whole[k] = *v
				}
			}
			if len(whole) > 0 {
				ops = append(ops, jsonpatch.NewOperation("add", path, whole))
			}
			return
		}
		for _, k := range keys {
			old, present := current[k]
			p := path + "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
			switch v := final[k]; {
			case v == nil && present:
				ops = append(ops, jsonpatch.NewOperation("remove", p, nil))
			case v != nil && !present:
				ops = append(ops, jsonpatch.NewOperation("add", p, *v))
			case v != nil && old != *v:
				ops = append(ops, jsonpatch.NewOperation("replace", p, *v))
			}
		}
	}
	mapOps("/metadata/labels", labels, c.Set, c.Remove)
	bookkeeping := map[string]string{}
	var gone []string
	for _, a := range c.Annotations() {
		if a.Remove {
			gone = append(gone, a.Key)
		} else {
			bookkeeping[a.Key] = a.Value
		}
	}
	mapOps("/metadata/annotations", annotations, bookkeeping, gone)
	return ops
}

// metadataPatch is appendMetadataPatch's patch after a prefix it must leave as it is, checked to
// be the bytes encoding/json gives for referenceOps (what admission.Patched would send): nil when
// it has none.
func metadataPatch(t testing.TB, labels, annotations map[string]string, c trafficrouting.LabelChange) []byte {
	t.Helper()
	prefix := []byte("prefix")
	got, n := appendMetadataPatch(prefix, labels, annotations, c)
	if string(got[:len(prefix)]) != "prefix" {
		t.Fatalf("appendMetadataPatch changed what was in the buffer: %q", got)
	}
	patch := got[len(prefix):]
	if n == 0 {
		if len(patch) != 0 {
			t.Errorf("no operations, but appended %q", patch)
		}
		return nil
	}
	reference := referenceOps(labels, annotations, c)
	if len(reference) != n {
		t.Errorf("appendMetadataPatch says %d operations, the reference has %d", n, len(reference))
	}
	want, err := json.Marshal(reference)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(patch)); diff != "" {
		t.Errorf("the patch differs from encoding/json's bytes for the reference operations (-marshal +ours):\n%s", diff)
	}
	return patch
}

// metadataOps are the operations of metadataPatch.
func metadataOps(t testing.TB, labels, annotations map[string]string, c trafficrouting.LabelChange) []jsonpatch.JsonPatchOperation {
	t.Helper()
	patch := metadataPatch(t, labels, annotations, c)
	if patch == nil {
		return nil
	}
	var ops []jsonpatch.JsonPatchOperation
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	return ops
}

func TestMetadataPatchEncodesAsEncodingJSON(t *testing.T) {
	odd := "<b>&\"quoted\"\\ \t\n\x00\x1f\x7f é \u2028 \u2029 \xff\xfe"
	for name, tc := range map[string]struct {
		labels, annotations map[string]string
		change              trafficrouting.LabelChange
		ops                 int
	}{
		"nothing to do": {labels: map[string]string{"a": "b"}, change: trafficrouting.LabelChange{}, ops: 0},
		"add labels and create the annotations": {labels: map[string]string{"app": "a"},
			change: trafficrouting.LabelChange{Set: map[string]string{"opensergo.io/canary-gray": "gray", "alicloud.service.tag": "gray"}, Managed: "alicloud.service.tag,opensergo.io/canary-gray"}, ops: 3},
		"create the labels whole": {annotations: map[string]string{"team": "shop"},
			change: trafficrouting.LabelChange{Set: map[string]string{"b": "2", "a": "1", "c": "3"}, Remove: []string{"c"}, Managed: "a,b"}, ops: 2},
		"replace, remove, give back": {labels: map[string]string{"ASM_TRAFFIC_TAG": "gray", "x": "y"},
			annotations: map[string]string{trafficrouting.ManagedLabelsAnnotation: "ASM_TRAFFIC_TAG,x", trafficrouting.OriginalLabelsAnnotation: `{"ASM_TRAFFIC_TAG":"base"}`},
			change:      trafficrouting.LabelChange{Set: map[string]string{"ASM_TRAFFIC_TAG": "base"}, Remove: []string{"x"}}, ops: 4},
		"keys and values encoding/json escapes": {labels: map[string]string{odd: "v", "x~0y~1z&": "1"},
			change: trafficrouting.LabelChange{Set: map[string]string{odd: odd, "k<": "v>", "\xc3": "\"", "日本": "語"}, Remove: []string{"x~0y~1z&"}, Managed: odd, Originals: `{"` + odd + `":"\u2028"}`}, ops: 6},
	} {
		t.Run(name, func(t *testing.T) {
			if got := len(metadataOps(t, tc.labels, tc.annotations, tc.change)); got != tc.ops {
				t.Errorf("%d operations, want %d", got, tc.ops)
			}
		})
	}
}

// FuzzMetadataPatch checks appendMetadataPatch's bytes against encoding/json's on changes with
// arbitrary keys and values.
func FuzzMetadataPatch(f *testing.F) {
	f.Add("opensergo.io/canary-gray", "gray", "a~b", "base", `{"a":"b"}`)
	f.Add("<&>", "\u2028\xff", "\x00", "é", "")
	f.Fuzz(func(t *testing.T, key, value, other, current, originals string) {
		change := trafficrouting.LabelChange{Set: map[string]string{key: value}, Remove: []string{other}, Managed: key, Originals: originals}
		metadataPatch(t, map[string]string{other: current, key: current}, nil, change)
		metadataPatch(t, nil, map[string]string{trafficrouting.ManagedLabelsAnnotation: other}, change)
	})
}

// TestWebhookSendsTheLibrarysPatch checks that the webhook lanes-manager serves answers a
// canary pod with the response admission.Webhook would have sent for the same operations given
// to admission.Patched: the same bytes, as a JSON patch.
func TestWebhookSendsTheLibrarysPatch(t *testing.T) {
	h, _, _ := handler(t, fixture("gray"))
	h.Resolver.Defaults.Dialects = append(h.Resolver.Defaults.Dialects, trafficrouting.DialectASM)
	for name, req := range map[string]admission.Request{
		"canary":                     request(t, "new"),
		"canary with unknown fields": admissionOf([]byte(canaryPodJSON), false),
	} {
		t.Run(name, func(t *testing.T) {
			req.UID = "uid-1"
			got := h.Webhook().Handle(t.Context(), req)
			ops := operations(t, got)
			if len(ops) == 0 {
				t.Fatalf("no patch for a canary pod: %+v", got)
			}
			want := admission.Patched("lane labels", ops...)
			if err := want.Complete(req); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.AdmissionResponse, got.AdmissionResponse); diff != "" {
				t.Errorf("response differs from the library's (-library +ours):\n%s", diff)
			}
		})
	}
}
