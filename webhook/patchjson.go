package webhook

import (
	"context"
	"encoding/json"
	"slices"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Webhook is the Pod CREATE webhook as lanes-manager serves it at Path: h behind
// controller-runtime's admission.Webhook, its JSON patch encoded by encodedPatch.
func (h *PodLabeler) Webhook() *admission.Webhook {
	return &admission.Webhook{Handler: encodedPatch{h}}
}

// encodedPatch encodes the JSON patch of its handler's response itself, into the bytes that
// admission.Response.Complete would have sent (appendPatch), so that Complete finds the patch
// already made and leaves it as it is. Complete marshals the operations with encoding/json, which
// reflects over each one twice (jsonpatch's MarshalJSON marshals again) and rescans what that
// returns: on a labelled pod, as much time as the lane decision's own work.
type encodedPatch struct{ admission.Handler }

func (h encodedPatch) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp := h.Handler.Handle(ctx, req)
	if len(resp.Patches) == 0 {
		return resp
	}
	patch, ok := appendPatch(make([]byte, 0, 512), resp.Patches) // a labelled pod's patch fits
	if !ok {
		return resp // a value appendPatch does not encode: Complete marshals the operations
	}
	jsonPatch := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType, resp.Patches = patch, &jsonPatch, nil
	return resp
}

// appendPatch appends ops as encoding/json marshals them (json.Marshal(ops), jsonpatch's
// MarshalJSON included: "value" omitted when nil, except as null for add and replace), byte for
// byte. It encodes the values MetadataPatch makes (nil, a string, a map of strings); false, with
// nothing appended, for any other.
func appendPatch(buf []byte, ops []jsonpatch.JsonPatchOperation) ([]byte, bool) {
	if ops == nil {
		return append(buf, "null"...), true
	}
	start := len(buf)
	buf = append(buf, '[')
	for i, op := range ops {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"op":`...)
		buf = appendString(buf, op.Operation)
		buf = append(buf, `,"path":`...)
		buf = appendString(buf, op.Path)
		switch v := op.Value.(type) {
		case nil:
			if op.Operation == "add" || op.Operation == "replace" {
				buf = append(buf, `,"value":null`...)
			}
		case string:
			buf = append(buf, `,"value":`...)
			buf = appendString(buf, v)
		case map[string]string:
			buf = append(buf, `,"value":`...)
			buf = appendStringMap(buf, v)
		default:
			return buf[:start], false
		}
		buf = append(buf, '}')
	}
	return append(buf, ']'), true
}

// appendStringMap appends m as encoding/json marshals a map of strings: keys sorted, null for a
// nil map.
func appendStringMap(buf []byte, m map[string]string) []byte {
	if m == nil {
		return append(buf, "null"...)
	}
	var small [8]string // the bookkeeping annotations of a pod that has none: no allocation
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, k)
		buf = append(buf, ':')
		buf = appendString(buf, m[k])
	}
	return append(buf, '}')
}

// appendString appends s as encoding/json marshals a string. Label keys and values, paths and
// the bookkeeping annotations are printable ASCII that needs no escape (or only the quotes of
// the original-labels JSON); anything else is left to encoding/json itself, so the bytes are
// always its bytes (HTML characters, control characters and invalid UTF-8 escaped its way).
func appendString(buf []byte, s string) []byte {
	for i := range len(s) {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '<', c == '>', c == '&':
			b, _ := json.Marshal(s) // a string always encodes
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	for i := range len(s) {
		if c := s[i]; c == '"' || c == '\\' {
			buf = append(buf, '\\')
		}
		buf = append(buf, s[i])
	}
	return append(buf, '"')
}
