package webhook

import (
	"encoding/json"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// Webhook is the Pod CREATE webhook as lanes-manager serves it at Path: h behind
// controller-runtime's admission.Webhook.
func (h *PodLabeler) Webhook() *admission.Webhook {
	return &admission.Webhook{Handler: h}
}

// patched admits with a JSON patch already encoded. admission.Patched would take operations and
// have admission.Response.Complete marshal them with encoding/json, which reflects over each one
// twice (jsonpatch's MarshalJSON marshals again) and rescans what that returns: on a labelled
// pod, as much time as building the operations and the lane decision's own work.
func patched(msg string, patch []byte) admission.Response {
	resp := admission.Allowed(msg)
	jsonPatch := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &jsonPatch
	return resp
}

// appendMetadataPatch appends the JSON patch (RFC 6902) of a label change on an object with these
// labels and annotations, and says how many operations it has (none: nothing appended). It
// touches nothing but those two maps, so fields of the object this binary's Go types do not know
// (a newer API server's) are never removed. The bytes are those encoding/json gives for the same
// operations as gomodules.xyz/jsonpatch values (what admission.Patched sends): each map's keys
// patched in sorted order, a map that is absent added whole.
func appendMetadataPatch(buf []byte, labels, annotations map[string]string, c trafficrouting.LabelChange) (patch []byte, ops int) {
	var small [8]mapEdit // a lane's labels, and those it gives back: no allocation
	edits := small[:0]
	for k, v := range c.Set {
		edits = append(edits, mapEdit{key: k, value: v})
	}
	for _, k := range c.Remove {
		edits = append(edits, mapEdit{key: k, remove: true}) // a key also in Set is removed
	}
	bookkeeping := c.Annotations()
	annotationEdits := make([]mapEdit, 0, len(bookkeeping))
	for _, a := range bookkeeping {
		annotationEdits = append(annotationEdits, mapEdit{key: a.Key, value: a.Value, remove: a.Remove})
	}
	start := len(buf)
	buf = append(buf, '[')
	buf, ops = appendMapPatch(buf, ops, "/metadata/labels", labels, edits)
	buf, ops = appendMapPatch(buf, ops, "/metadata/annotations", annotations, annotationEdits)
	if ops == 0 {
		return buf[:start], 0
	}
	return append(buf, ']'), ops
}

// mapEdit sets (remove false) or removes one key of a string map.
type mapEdit struct {
	key, value string
	remove     bool
}

// appendMapPatch appends to a patch of ops operations those that make edits to the string map at
// path, whose current content is current (nil when the map is absent), and returns the new count.
// Of several edits of one key the last counts. It sorts edits.
func appendMapPatch(buf []byte, ops int, path string, current map[string]string, edits []mapEdit) (patch []byte, total int) {
	slices.SortStableFunc(edits, func(a, b mapEdit) int { return strings.Compare(a.key, b.key) })
	last := func(i int) bool { return i+1 == len(edits) || edits[i+1].key != edits[i].key }
	if current == nil {
		// The map is created whole with what the edits leave in it, keys sorted as encoding/json
		// sorts a map's.
		kept := 0
		for i, e := range edits {
			if last(i) && !e.remove {
				kept++
			}
		}
		if kept == 0 {
			return buf, ops
		}
		buf = appendOperation(buf, ops, "add")
		buf = appendString(buf, path)
		buf = append(buf, `,"value":{`...)
		n := 0
		for i, e := range edits {
			if !last(i) || e.remove {
				continue
			}
			if n > 0 {
				buf = append(buf, ',')
			}
			n++
			buf = appendString(buf, e.key)
			buf = append(buf, ':')
			buf = appendString(buf, e.value)
		}
		return append(buf, "}}"...), ops + 1
	}
	for i, e := range edits {
		if !last(i) {
			continue // a later edit of the key counts
		}
		old, present := current[e.key]
		var op string
		switch {
		case e.remove && present:
			op = "remove"
		case !e.remove && !present:
			op = "add"
		case !e.remove && old != e.value:
			op = "replace"
		default:
			continue
		}
		buf = appendOperation(buf, ops, op)
		buf = appendPath(buf, path, e.key)
		if op != "remove" {
			buf = append(buf, `,"value":`...)
			buf = appendString(buf, e.value)
		}
		buf = append(buf, '}')
		ops++
	}
	return buf, ops
}

// appendOperation opens the patch's next operation, up to its "path" member's value.
func appendOperation(buf []byte, ops int, op string) []byte {
	if ops > 0 {
		buf = append(buf, ',')
	}
	buf = append(buf, `{"op":"`...)
	buf = append(buf, op...)
	return append(buf, `","path":`...)
}

// appendPath appends, as a JSON string, the path of key in the map at path: the key escaped as
// one JSON Pointer reference token.
func appendPath(buf []byte, path, key string) []byte {
	if !plainJSON(path) || !plainJSON(key) {
		return appendString(buf, path+"/"+escapePointer(key)) // encoding/json's escapes
	}
	buf = append(buf, '"')
	buf = append(buf, path...)
	buf = append(buf, '/')
	buf = appendPointerToken(buf, key)
	return append(buf, '"')
}

// appendPointerToken appends key escaped as one JSON Pointer reference token (RFC 6901): "~" as
// "~0" and "/" as "~1", so that the "~" of an escaped "/" is never read as an escape itself.
func appendPointerToken(buf []byte, key string) []byte {
	for i := range len(key) {
		switch c := key[i]; c {
		case '~':
			buf = append(buf, "~0"...)
		case '/':
			buf = append(buf, "~1"...)
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// escapePointer is key as one JSON Pointer reference token (appendPointerToken). Most keys need
// no escape, and cost nothing.
func escapePointer(key string) string {
	if !strings.ContainsAny(key, "~/") {
		return key
	}
	return string(appendPointerToken(make([]byte, 0, len(key)+4), key))
}

// appendString appends s as encoding/json marshals a string. Label keys and values, paths and
// the bookkeeping annotations are printable ASCII that needs no escape (or only the quotes of
// the original-labels JSON); anything else is left to encoding/json itself, so the bytes are
// always its bytes (HTML characters, control characters and invalid UTF-8 escaped its way).
func appendString(buf []byte, s string) []byte {
	if !plainText(s) {
		b, _ := json.Marshal(s) // a string always encodes
		return append(buf, b...)
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

// plainText reports whether s is printable ASCII that encoding/json writes as it is, but for
// escaping its quotes and backslashes.
func plainText(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case c < 0x20, c >= 0x7f, c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// plainJSON reports whether s is written into a JSON string as it is: plainText with no quote or
// backslash.
func plainJSON(s string) bool {
	return plainText(s) && !strings.ContainsAny(s, `"\`)
}
