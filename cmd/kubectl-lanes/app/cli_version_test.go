package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func TestVersionVerb(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), []string{"version", "-o", "json"}, genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var info map[string]string
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"version", "commit", "goVersion", "platform"} {
		if info[k] == "" {
			t.Errorf("%s missing from %s", k, out.String())
		}
	}
	out.Reset()
	errOut.Reset()
	if code := Run(t.Context(), []string{"version", "-o", "table"}, genericiooptions.IOStreams{Out: &out, ErrOut: &errOut}); code != 1 || !strings.Contains(errOut.String(), `--output "table" is not one of json, yaml`) {
		t.Errorf("bad -o: exit %d, stderr %q", code, errOut.String())
	}
}
