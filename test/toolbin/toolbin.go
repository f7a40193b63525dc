// Package toolbin finds, for unit tests that run one, a tool that `make tools` builds into the
// repository's .cache/bin (or into $LANES_TOOLS_BIN).
package toolbin

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Path returns the absolute path of tool name. When it is absent the test is skipped, or fails
// when the environment variable require is set (make targets set it so a missing tool is an error).
func Path(t testing.TB, name, require string) string {
	t.Helper()
	dir := os.Getenv("LANES_TOOLS_BIN")
	if dir == "" {
		_, here, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(here), "..", "..", ".cache", "bin")
	}
	bin, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv(require) != "" {
			t.Fatalf("%s not found at %s: run `make tools`", name, bin)
		}
		t.Skipf("%s not found at %s (run `make tools`)", name, bin)
	}
	return bin
}
