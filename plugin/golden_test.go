package plugin

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

var update = flag.Bool("update", false, "rewrite the expected results of the golden cases")

const scriptsDir = "../luascripts"

func loadCases(t testing.TB) map[string][]NamedCase {
	t.Helper()
	cases, err := LoadIngressCases(os.DirFS(scriptsDir), "trafficrouting_ingress")
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestIngressGoldenCases runs every case beside the ingress scripts through Kruise's own Lua
// runtime and compares each step's canary annotations (or the refusal) with the case.
func TestIngressGoldenCases(t *testing.T) {
	all := loadCases(t)
	total := 0
	for provider, cases := range all {
		script, err := luascripts.Ingress(provider)
		if err != nil {
			t.Fatalf("cases under testdata/%s: %v", provider, err)
		}
		for _, nc := range cases {
			total++
			t.Run(strings.TrimSuffix(nc.Path, ".yaml"), func(t *testing.T) {
				c := nc.Case
				if c.Description == "" {
					t.Error("case has no description")
				}
				got, err := c.Run(string(script))
				if *update {
					rewrite(t, nc, got, err)
					return
				}
				if c.ExpectedError != nil {
					if err == nil {
						t.Fatalf("no error, want one at step %d containing %q", c.ExpectedError.Step, c.ExpectedError.Contains)
					}
					var stepErr *StepError
					if !errors.As(err, &stepErr) || stepErr.Step != c.ExpectedError.Step {
						t.Errorf("error %v, want it at step %d", err, c.ExpectedError.Step)
					}
					if msg := ErrorMessage(err); !strings.Contains(msg, c.ExpectedError.Contains) {
						t.Errorf("error message %q does not contain %q", msg, c.ExpectedError.Contains)
					}
					if strings.Contains(ErrorMessage(err), "stack traceback") {
						t.Errorf("error message carries a Lua traceback: %q", ErrorMessage(err))
					}
					return
				}
				if err != nil {
					t.Fatalf("unexpected error: %s", ErrorMessage(err))
				}
				if len(c.Expected) == 0 {
					t.Fatal("case expects neither results nor an error")
				}
				if diff := cmp.Diff(c.Expected, got); diff != "" {
					t.Errorf("canary annotations per step (-want +got):\n%s", diff)
				}
			})
		}
	}
	if total == 0 {
		t.Fatal("no golden case found")
	}
}

// rewrite replaces only the expected results of a case file, keeping what a person wrote.
func rewrite(t *testing.T, nc NamedCase, got []ExpectedStep, err error) {
	t.Helper()
	file := filepath.Join(scriptsDir, nc.Path)
	if err != nil {
		var stepErr *StepError
		if !errors.As(err, &stepErr) {
			t.Fatalf("cannot record error %v", err)
		}
		rewriteExpectation(t, file, "expectedError", ExpectedError{Step: stepErr.Step, Contains: strings.TrimPrefix(ErrorMessage(err), fmt.Sprintf("step %d: ", stepErr.Step))})
		return
	}
	rewriteExpectation(t, file, "expected", got)
}
