package luascripts

import (
	"bytes"
	"strings"
	"testing"
)

func TestWithDefaultLaneHeader(t *testing.T) {
	for _, name := range IngressProviders() {
		t.Run(name, func(t *testing.T) {
			script, err := Ingress(name)
			if err != nil {
				t.Fatal(err)
			}
			if name == "higress" {
				// Higress derives no lane tag, so its script reads no default lane header.
				if bytes.Contains(script, defaultLaneHeaderName) {
					t.Fatalf("the higress script names %s, which it does not read", defaultLaneHeaderName)
				}
				got, err := WithDefaultLaneHeader(script, "x-lane")
				if err != nil || !bytes.Equal(got, script) {
					t.Errorf("WithDefaultLaneHeader on a script without the line: changed %v, error %v; want it as it is", !bytes.Equal(got, script), err)
				}
				return
			}
			if !bytes.Contains(script, []byte(`DEFAULT_LANE_HEADER = "`+BuiltinLaneHeader+`"`)) {
				t.Fatalf("the embedded %s script does not default to %s", name, BuiltinLaneHeader)
			}
			got, err := WithDefaultLaneHeader(script, "x-lane")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(got, []byte(`DEFAULT_LANE_HEADER = "x-lane"`+"\n")) || bytes.Contains(got, []byte(`"`+BuiltinLaneHeader+`"`)) {
				t.Errorf("the default lane header line was not rewritten to x-lane")
			}
			if len(got) != len(script)-len(BuiltinLaneHeader)+len("x-lane") {
				t.Errorf("more than the default lane header line changed")
			}
			if _, err := WithDefaultLaneHeader(got, "x-other"); err == nil || !strings.Contains(err.Error(), "0 times") {
				t.Errorf("rewriting a rewritten script: %v, want an error saying the line is not there", err)
			}
		})
	}
	if _, err := WithDefaultLaneHeader([]byte(`DEFAULT_LANE_HEADER = "x-mse-tag"`+"\n"), `x" .. os.exit() .. "`); err == nil || !strings.Contains(err.Error(), "not a valid HTTP header name") {
		t.Errorf("a header that is no token: %v, want a refusal", err)
	}
}
