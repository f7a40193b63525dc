package webhook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	sigsjson "sigs.k8s.io/json"
)

// decodePodMetadata decodes the metadata of a pod sent for admission with exactly the result
// (value and error) of decoding the whole pod into a metav1.PartialObjectMetadata with
// sigs.k8s.io/json's case-sensitive decoder, as the API server's own decoder reads field names.
//
// The decision reads only the pod's metadata. Rather than decoding the whole pod (the decoder's
// state machine scans its containers, volumes and status twice: once to validate, once to skip
// them), it walks the top-level object once with metadataSpans, which only checks that the rest
// is JSON, and decodes only the value of each top-level "metadata" member, in order, into one
// ObjectMeta (as the whole-object decoder does with a repeated key); a single plain metadata
// object (plainMetadata: what controllers create pods with) is read without reflection at all.
// Whatever the walk is not sure of — an escaped top-level key (which might spell "metadata"),
// apiVersion or kind holding something other than a string or null (a decode error), nesting
// deeper than maxScanDepth, anything that is not JSON — and any error decoding a metadata value
// fall back to the whole-object decode, which then gives the result, error message included.
//
// members is how many top-level "metadata" members the pod has (when it decodes). The API server
// sends one; with more, the decoder's merge of them is not what a JSON patch of "/metadata/..."
// applies to.
func decodePodMetadata(raw []byte) (meta metav1.ObjectMeta, members int, err error) {
	if spans, ok := metadataSpans(raw); ok {
		if len(spans) == 1 {
			if meta, ok := plainMetadata(raw[spans[0].start:spans[0].end]); ok {
				return meta, 1, nil
			}
		}
		fast := true
		for _, s := range spans {
			if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw[s.start:s.end], &meta); err != nil {
				fast = false
				break
			}
		}
		if fast {
			return meta, len(spans), nil
		}
	}
	whole := &metav1.PartialObjectMetadata{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, whole); err != nil {
		return metav1.ObjectMeta{}, 0, fmt.Errorf("decode pod metadata: %w", err)
	}
	return whole.ObjectMeta, metadataMembers(raw), nil
}

// metadataMembers counts the top-level "metadata" members of raw, a JSON object that decodes,
// keys unescaped as the decoder unescapes them. Only the rare inputs metadataSpans leaves to the
// decoder come here.
func metadataMembers(raw []byte) int {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0
	}
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if tok == "metadata" {
			n++
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return n
		}
	}
	return n
}

// span is a value's bytes in the raw pod, [start, end).
type span struct{ start, end int }

// maxScanDepth bounds metadataSpans' recursion; deeper input goes to the whole-object decoder,
// which has its own limit.
const maxScanDepth = 512

// metadataSpans walks raw, which must be one JSON object and nothing else, and returns the spans
// of the values of its top-level "metadata" keys, in order. ok is false where the walk cannot
// vouch that decoding only those spans gives the whole-object decode's result (see
// decodePodMetadata); a false ok never means more than "decode the whole object".
func metadataSpans(raw []byte) (spans []span, ok bool) {
	s := scanner{raw: raw}
	s.skipSpace()
	if !s.consume('{') {
		return nil, false
	}
	s.skipSpace()
	if s.consume('}') {
		return nil, s.atEnd()
	}
	for {
		s.skipSpace()
		keyStart := s.pos
		if !s.consume('"') || !s.str() {
			return nil, false
		}
		key := raw[keyStart+1 : s.pos-1]
		s.skipSpace()
		if !s.consume(':') {
			return nil, false
		}
		s.skipSpace()
		start := s.pos
		if !s.value(1) {
			return nil, false
		}
		switch string(key) {
		case "metadata":
			spans = append(spans, span{start, s.pos})
		case "apiVersion", "kind":
			// TypeMeta's string fields: anything but a string or null is a decode error.
			if raw[start] != '"' && raw[start] != 'n' {
				return nil, false
			}
		default:
			for _, c := range key {
				if c == '\\' {
					return nil, false // an escaped key may spell one of the above
				}
			}
		}
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		if !s.consume('}') {
			return nil, false
		}
		return spans, s.atEnd()
	}
}

// scanner checks JSON (RFC 8259, as encoding/json accepts it: any bytes of 0x20 and above in
// strings) without building anything. Each method reports false where raw is not JSON, or where
// it would rather not say.
type scanner struct {
	raw []byte
	pos int
	// text, when set, is raw as a string: plainString then hands out parts of it rather than
	// copies, one allocation for all the strings decoded.
	text string
}

func (s *scanner) atEnd() bool {
	s.skipSpace()
	return s.pos == len(s.raw)
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.raw) {
		switch s.raw[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.pos < len(s.raw) && s.raw[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// value scans one JSON value at depth (1 for a top-level member's value).
func (s *scanner) value(depth int) bool {
	if s.pos >= len(s.raw) || depth > maxScanDepth {
		return false
	}
	switch c := s.raw[s.pos]; {
	case c == '"':
		s.pos++
		return s.str()
	case c == '{':
		s.pos++
		return s.object(depth)
	case c == '[':
		s.pos++
		return s.array(depth)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

// object scans the rest of an object whose "{" has been consumed.
func (s *scanner) object(depth int) bool {
	s.skipSpace()
	if s.consume('}') {
		return true
	}
	for {
		s.skipSpace()
		if !s.consume('"') || !s.str() {
			return false
		}
		s.skipSpace()
		if !s.consume(':') {
			return false
		}
		s.skipSpace()
		if !s.value(depth + 1) {
			return false
		}
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

// array scans the rest of an array whose "[" has been consumed.
func (s *scanner) array(depth int) bool {
	s.skipSpace()
	if s.consume(']') {
		return true
	}
	for {
		s.skipSpace()
		if !s.value(depth + 1) {
			return false
		}
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		return s.consume(']')
	}
}

// str scans the rest of a string whose opening quote has been consumed, through its closing quote.
func (s *scanner) str() bool {
	// Eight bytes at a time while none ends the string, escapes or is a control character.
	for s.pos+8 <= len(s.raw) && !stringSpecial(binary.LittleEndian.Uint64(s.raw[s.pos:])) {
		s.pos += 8
	}
	for s.pos < len(s.raw) {
		c := s.raw[s.pos]
		s.pos++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.pos >= len(s.raw) {
				return false
			}
			e := s.raw[s.pos]
			s.pos++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.pos+4 > len(s.raw) {
					return false
				}
				for _, h := range s.raw[s.pos : s.pos+4] {
					if !isHex(h) {
						return false
					}
				}
				s.pos += 4
			default:
				return false
			}
		}
	}
	return false
}

// stringSpecial reports whether any of the eight bytes in w is a quote, a backslash or below
// 0x20 (the bytes str must look at one by one), with the exact tests of "Bit Twiddling Hacks"
// (Sean Eron Anderson): a byte is zero (hasZero) and a byte is below n, n at most 128 (hasLess).
func stringSpecial(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) bool { return (v-ones)&^v&highs != 0 }
	hasLess := func(v uint64, n uint64) bool { return (v-ones*n)&^v&highs != 0 }
	return hasZero(w^(ones*'"')) || hasZero(w^(ones*'\\')) || hasLess(w, 0x20)
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *scanner) literal(word string) bool {
	if len(s.raw)-s.pos < len(word) || string(s.raw[s.pos:s.pos+len(word)]) != word {
		return false
	}
	s.pos += len(word)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; what follows is the caller's to check.
func (s *scanner) number() bool {
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.digits() == 0:
		return false
	}
	if s.consume('.') && s.digits() == 0 {
		return false
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.raw) && s.raw[s.pos] >= '0' && s.raw[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

// plainMetadata reads the metadata object a controller creates pods with — names, labels,
// annotations and owner references, in strings of printable ASCII without escapes — without the
// reflection of sigs.k8s.io/json, into what that decoder would give. raw is one JSON value that
// metadataSpans has checked. Anything else (another ObjectMeta field, an escape, a non-ASCII byte,
// a null where a string goes, a repeated field) and it answers false, for the decoder to read it.
// The strings it returns share one copy of raw.
func plainMetadata(raw []byte) (metav1.ObjectMeta, bool) {
	var meta metav1.ObjectMeta
	// The strings decoded share one copy of raw (text) rather than each being one.
	s := scanner{raw: raw, text: string(raw)}
	if !s.consume('{') {
		return meta, false // null: the decoder's
	}
	var seen uint16 // the ObjectMeta fields read, by their bit below
	once := func(bit uint16) bool {
		if seen&bit != 0 {
			return false // a repeated field: the decoder's
		}
		seen |= bit
		return true
	}
	ok := s.members(func(key string) bool {
		switch key {
		case "name":
			return once(1<<0) && s.plainString(&meta.Name)
		case "generateName":
			return once(1<<1) && s.plainString(&meta.GenerateName)
		case "namespace":
			return once(1<<2) && s.plainString(&meta.Namespace)
		case "uid":
			var uid string
			ok := once(1<<3) && s.plainString(&uid)
			meta.UID = types.UID(uid)
			return ok
		case "resourceVersion":
			return once(1<<4) && s.plainString(&meta.ResourceVersion)
		case "labels":
			var ok bool
			meta.Labels, ok = s.plainMap()
			return once(1<<5) && ok
		case "annotations":
			var ok bool
			meta.Annotations, ok = s.plainMap()
			return once(1<<6) && ok
		case "ownerReferences":
			return once(1<<7) && s.plainOwners(&meta.OwnerReferences)
		case "creationTimestamp":
			return once(1<<8) && s.literal("null") // what a pod not yet created says; a time is the decoder's
		case "selfLink", "generation", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "managedFields":
			return false
		}
		return s.value(2) // a field ObjectMeta does not have: skipped, as the decoder skips it, however often it appears
	})
	return meta, ok && s.pos == len(raw)
}

// members scans the members of an object whose "{" has been consumed, handing each plain key to
// member, which must scan the value. False as soon as member is, or a key is not plain.
func (s *scanner) members(member func(key string) bool) bool {
	s.skipSpace()
	if s.consume('}') {
		return true
	}
	for {
		s.skipSpace()
		var key string
		if !s.plainString(&key) || key == "" {
			return false
		}
		s.skipSpace()
		if !s.consume(':') {
			return false
		}
		s.skipSpace()
		if !member(key) {
			return false
		}
		s.skipSpace()
		if s.consume(',') {
			continue
		}
		return s.consume('}')
	}
}

// plainString reads a string of printable ASCII without escapes into out; false for anything
// else (null included: the decoder would leave out as it is, which is not worth a rule here).
func (s *scanner) plainString(out *string) bool {
	if !s.consume('"') {
		return false
	}
	start := s.pos
	for s.pos < len(s.raw) {
		c := s.raw[s.pos]
		switch {
		case c == '"':
			if s.text != "" {
				*out = s.text[start:s.pos]
			} else {
				*out = string(s.raw[start:s.pos])
			}
			s.pos++
			return true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		}
		s.pos++
	}
	return false
}

// plainMap reads an object of plain strings (a new map, even when empty) or null (nil).
func (s *scanner) plainMap() (map[string]string, bool) {
	if s.literal("null") {
		return nil, true
	}
	if !s.consume('{') {
		return nil, false
	}
	m := map[string]string{}
	ok := s.members(func(key string) bool {
		var v string
		if !s.plainString(&v) {
			return false
		}
		m[key] = v // a repeated key: the last value, as the decoder keeps it
		return true
	})
	return m, ok
}

// plainOwners reads an array of plain owner references (a new slice, even when empty) or null.
func (s *scanner) plainOwners(out *[]metav1.OwnerReference) bool {
	if s.literal("null") {
		*out = nil
		return true
	}
	if !s.consume('[') {
		return false
	}
	refs := []metav1.OwnerReference{}
	s.skipSpace()
	if !s.consume(']') {
		for {
			s.skipSpace()
			var ref metav1.OwnerReference
			if !s.plainOwner(&ref) {
				return false
			}
			refs = append(refs, ref)
			s.skipSpace()
			if s.consume(',') {
				continue
			}
			if !s.consume(']') {
				return false
			}
			break
		}
	}
	*out = refs
	return true
}

func (s *scanner) plainOwner(ref *metav1.OwnerReference) bool {
	if !s.consume('{') {
		return false
	}
	var seen [6]bool
	once := func(i int) bool {
		if seen[i] {
			return false
		}
		seen[i] = true
		return true
	}
	return s.members(func(key string) bool {
		switch key {
		case "apiVersion":
			return once(0) && s.plainString(&ref.APIVersion)
		case "kind":
			return once(1) && s.plainString(&ref.Kind)
		case "name":
			return once(2) && s.plainString(&ref.Name)
		case "uid":
			var uid string
			ok := once(3) && s.plainString(&uid)
			ref.UID = types.UID(uid)
			return ok
		case "controller":
			return once(4) && s.plainBool(&ref.Controller)
		case "blockOwnerDeletion":
			return once(5) && s.plainBool(&ref.BlockOwnerDeletion)
		}
		return s.value(4)
	})
}

// plainBool reads true or false into a new *bool; false for anything else (null included).
func (s *scanner) plainBool(out **bool) bool {
	switch {
	case s.literal("true"):
		*out = ptr.To(true)
	case s.literal("false"):
		*out = ptr.To(false)
	default:
		return false
	}
	return true
}
