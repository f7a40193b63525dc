package luascripts

import (
	"bytes"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"
)

// defaultLaneHeaderName is the Lua global that holds the default lane header, in every ingress
// provider that reads it.
var defaultLaneHeaderName = []byte("DEFAULT_LANE_HEADER")

// BuiltinLaneHeader is the default lane header the embedded ingress providers carry.
const BuiltinLaneHeader = "x-mse-tag"

// defaultLaneHeaderLine is the one line of the ingress providers (lib/canary.lua) that holds
// the default lane header; WithDefaultLaneHeader rewrites it.
var defaultLaneHeaderLine = laneHeaderLine(BuiltinLaneHeader)

// laneHeaderLine is the line that sets the default lane header to header.
func laneHeaderLine(header string) []byte {
	return []byte(string(defaultLaneHeaderName) + " = " + strconv.Quote(header) + "\n")
}

// WithDefaultLaneHeader returns an ingress provider script whose default lane header (used where
// the stable Ingress names none) is header, so that the script and lanes-manager, whose
// --lane-header is that default, resolve the same lane. The header must be an HTTP header name,
// which also keeps it a plain Lua string literal. A script that reads no default lane header (no
// DEFAULT_LANE_HEADER at all: the Higress provider, which derives no lane tag) is returned as it
// is.
func WithDefaultLaneHeader(script []byte, header string) ([]byte, error) {
	if msgs := validation.IsHTTPHeaderName(header); len(msgs) > 0 {
		return nil, fmt.Errorf("default lane header %q is not a valid HTTP header name", header)
	}
	if !bytes.Contains(script, defaultLaneHeaderName) {
		return script, nil
	}
	if n := bytes.Count(script, defaultLaneHeaderLine); n != 1 {
		return nil, fmt.Errorf("the script holds the default lane header line %q %d times, want once", bytes.TrimSpace(defaultLaneHeaderLine), n)
	}
	return bytes.Replace(script, defaultLaneHeaderLine, laneHeaderLine(header), 1), nil
}
