package version

import (
	"strings"
	"testing"
)

func TestGetFallsBackAndLinkedValuesWin(t *testing.T) {
	got := Get()
	if got.Version == "" || got.Commit == "" || !strings.HasPrefix(got.GoVersion, "go") || !strings.Contains(got.Platform, "/") {
		t.Errorf("Get() = %+v, want every field filled", got)
	}
	version, commit = "v9.8.7", "abc123"
	t.Cleanup(func() { version, commit = "", "" })
	got = Get()
	if got.Version != "v9.8.7" || got.Commit != "abc123" {
		t.Errorf("Get() = %+v, want the linked version and commit", got)
	}
	if s := got.String(); !strings.HasPrefix(s, "v9.8.7 (commit abc123, go") {
		t.Errorf("String() = %q", s)
	}
}
