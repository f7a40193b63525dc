package luascripts

import (
	"bytes"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"
)

// defaultLaneHeaderLine is the one line of the ingress providers (lib/canary.lua) that holds
// the default lane header; WithDefaultLaneHeader rewrites it.
var defaultLaneHeaderLine = []byte(`DEFAULT_LANE_HEADER = "x-mse-tag"` + "\n")

// BuiltinLaneHeader is the default lane header the embedded ingress providers carry.
const BuiltinLaneHeader = "x-mse-tag"

// WithDefaultLaneHeader returns an ingress provider script whose default lane header (used where
// the stable Ingress names none) is header, so that the script and lanes-manager, whose
// --lane-header is that default, resolve the same lane. The header must be an HTTP header name,
// which also keeps it a plain Lua string literal.
func WithDefaultLaneHeader(script []byte, header string) ([]byte, error) {
	if msgs := validation.IsHTTPHeaderName(header); len(msgs) > 0 {
		return nil, fmt.Errorf("default lane header %q is not a valid HTTP header name", header)
	}
	if n := bytes.Count(script, defaultLaneHeaderLine); n != 1 {
		return nil, fmt.Errorf("the script holds the default lane header line %q %d times, want once", bytes.TrimSpace(defaultLaneHeaderLine), n)
	}
	line := []byte("DEFAULT_LANE_HEADER = " + strconv.Quote(header) + "\n")
	return bytes.Replace(script, defaultLaneHeaderLine, line, 1), nil
}
