package webhook

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// checkEncodedAsLibrary fails unless appendPatch encodes ops into json.Marshal's bytes (what
// admission.Response.Complete sends), or declines, leaving the buffer as it was, exactly when an
// operation's value is of a kind it does not encode.
func checkEncodedAsLibrary(t *testing.T, ops []jsonpatch.JsonPatchOperation, wantOK bool) {
	t.Helper()
	want, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	got, ok := appendPatch(prefix, ops)
	if ok != wantOK {
		t.Fatalf("appendPatch(%+v) ok = %v, want %v", ops, ok, wantOK)
	}
	if !ok {
		if string(got) != "prefix" {
			t.Errorf("appendPatch declined but left %q", got)
		}
		return
	}
	if diff := cmp.Diff(string(want), string(got[len(prefix):])); diff != "" {
		t.Errorf("appendPatch differs from json.Marshal (-marshal +ours):\n%s", diff)
	}
}

func TestAppendPatchEncodesAsEncodingJSON(t *testing.T) {
	for name, tc := range map[string]struct {
		ops []jsonpatch.JsonPatchOperation
		ok  bool
	}{
		"none":        {ops: []jsonpatch.JsonPatchOperation{}, ok: true},
		"nil":         {ops: nil, ok: true},
		"add label":   {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/metadata/labels/opensergo.io~1canary-gray", "gray")}, ok: true},
		"empty value": {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("replace", "/metadata/labels/a", "")}, ok: true},
		"remove":      {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("remove", "/metadata/labels/a", nil)}, ok: true},
		// jsonpatch's MarshalJSON says null where an add or a replace has no value.
		"add and replace without a value": {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/a", nil), jsonpatch.NewOperation("replace", "/b", nil), jsonpatch.NewOperation("test", "/c", nil)}, ok: true},
		"whole map": {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{
			trafficrouting.ManagedLabelsAnnotation: "b,a", trafficrouting.OriginalLabelsAnnotation: `{"ASM_TRAFFIC_TAG":"base"}`, "z": "", "": "empty key"})}, ok: true},
		"empty and nil maps": {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/a", map[string]string{}), jsonpatch.NewOperation("add", "/b", map[string]string(nil))}, ok: true},
		"strings encoding/json escapes": {ops: []jsonpatch.JsonPatchOperation{
			jsonpatch.NewOperation("add", "/metadata/labels/a", "<b>&\"quoted\"\\ \t\n\x00\x1f\x7f é \u2028 \u2029 \xff\xfe"),
			jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{"k<": "v>", "\xc3": "\"", "日本": "語"}),
			jsonpatch.NewOperation("remove", "/metadata/labels/x~0y~1z&", nil),
		}, ok: true},
		"another value kind": {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/a", "x"), jsonpatch.NewOperation("add", "/b", 1)}, ok: false},
		"a map of pointers":  {ops: []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/a", map[string]*string{"a": nil})}, ok: false},
	} {
		t.Run(name, func(t *testing.T) { checkEncodedAsLibrary(t, tc.ops, tc.ok) })
	}
}

// FuzzAppendPatch compares appendPatch with json.Marshal on operations with arbitrary strings.
func FuzzAppendPatch(f *testing.F) {
	f.Add("add", "/metadata/labels/a", "gray", "kruise-lanes.io/original-labels", `{"a":"b"}`)
	f.Add("replace", "/metadata/labels/<&>", "\u2028\xff", "\x00", "é")
	f.Fuzz(func(t *testing.T, op, path, value, key, mapValue string) {
		checkEncodedAsLibrary(t, []jsonpatch.JsonPatchOperation{
			jsonpatch.NewOperation(op, path, value),
			jsonpatch.NewOperation(op, path, nil),
			jsonpatch.NewOperation(op, path, map[string]string{key: mapValue, value: path}),
		}, true)
	})
}

// TestWebhookSendsTheLibrarysPatch checks that the webhook lanes-manager serves answers a
// canary pod with the patch admission.Webhook would have sent for PodLabeler's operations: the
// same bytes, as a JSON patch.
func TestWebhookSendsTheLibrarysPatch(t *testing.T) {
	h, _, _ := handler(t, fixture("gray"))
	h.Resolver.Defaults.Dialects = append(h.Resolver.Defaults.Dialects, trafficrouting.DialectASM)
	for name, req := range map[string]admission.Request{
		"canary":                     request(t, "new"),
		"canary with unknown fields": admissionOf([]byte(canaryPodJSON), false),
	} {
		t.Run(name, func(t *testing.T) {
			req.UID = "uid-1"
			want := h.Handle(t.Context(), req)
			if len(want.Patches) == 0 {
				t.Fatalf("no patch for a canary pod: %+v", want)
			}
			if err := want.Complete(req); err != nil {
				t.Fatal(err)
			}
			got := h.Webhook().Handle(t.Context(), req)
			if diff := cmp.Diff(want.AdmissionResponse, got.AdmissionResponse); diff != "" {
				t.Errorf("response differs from the library's (-library +ours):\n%s", diff)
			}
			if len(got.Patches) != 0 {
				t.Errorf("operations %+v left for Complete to marshal again", got.Patches)
			}
		})
	}
}
