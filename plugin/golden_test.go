package plugin

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	yamlv3 "go.yaml.in/yaml/v3"

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
	data, rErr := os.ReadFile(file)
	if rErr != nil {
		t.Fatal(rErr)
	}
	var doc yamlv3.Node
	if uErr := yamlv3.Unmarshal(data, &doc); uErr != nil {
		t.Fatal(uErr)
	}
	root := doc.Content[0]
	kept := root.Content[:0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k != "expected" && k != "expectedError" {
			kept = append(kept, root.Content[i], root.Content[i+1])
		}
	}
	root.Content = kept
	var key string
	var value any
	if err != nil {
		var stepErr *StepError
		if !errors.As(err, &stepErr) {
			t.Fatalf("cannot record error %v", err)
		}
		key, value = "expectedError", ExpectedError{Step: stepErr.Step, Contains: strings.TrimPrefix(ErrorMessage(err), fmt.Sprintf("step %d: ", stepErr.Step))}
	} else {
		key, value = "expected", got
	}
	var v yamlv3.Node
	if eErr := v.Encode(value); eErr != nil {
		t.Fatal(eErr)
	}
	root.Content = append(root.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: key}, &v)
	var out bytes.Buffer
	enc := yamlv3.NewEncoder(&out)
	enc.SetIndent(2)
	if mErr := enc.Encode(&doc); mErr != nil {
		t.Fatal(mErr)
	}
	if wErr := os.WriteFile(file, out.Bytes(), 0o644); wErr != nil {
		t.Fatal(wErr)
	}
}
