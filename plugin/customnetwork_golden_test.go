package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

func loadCustomNetworkCases(t testing.TB) map[string][]NamedCustomNetworkCase {
	t.Helper()
	cases, err := LoadCustomNetworkCases(os.DirFS(scriptsDir), "trafficrouting_customnetwork")
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestCustomNetworkGoldenCases runs every case beside the custom network scripts through Kruise's
// own Lua runtime and Kruise's step sequence, and compares each step's spec (or the refusal) with
// the case. Whatever the case, the route's labels and annotations pass through every step, the
// rules that do not route to the stable Service are kept as they are, and the route is exactly
// the original again once the release ends.
func TestCustomNetworkGoldenCases(t *testing.T) {
	total := 0
	for provider, cases := range loadCustomNetworkCases(t) {
		script := customNetworkScript(t, provider)
		for _, nc := range cases {
			total++
			t.Run(strings.TrimSuffix(nc.Path, ".yaml"), func(t *testing.T) {
				c := nc.Case
				if c.Description == "" {
					t.Error("case has no description")
				}
				got, steps, final, err := c.Run(script)
				if *update {
					rewriteCustomNetworkCase(t, nc, got, err)
					return
				}
				if c.ExpectedError != nil {
					assertStepError(t, err, c.ExpectedError)
					return
				}
				if err != nil {
					t.Fatalf("unexpected error: %s", ErrorMessage(err))
				}
				if len(c.Expected) == 0 {
					t.Fatal("case expects neither results nor an error")
				}
				if diff := cmp.Diff(c.Expected, got); diff != "" {
					t.Errorf("spec per step (-want +got):\n%s", diff)
				}
				plan, err := c.Plan()
				if err != nil {
					t.Fatal(err)
				}
				original, err := c.OriginalObject()
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range steps {
					assertNothingLost(t, s, original, plan.StableService)
				}
				assertSameObject(t, "after the release", original, final)
			})
		}
	}
	if total == 0 {
		t.Fatal("no custom network golden case found")
	}
}

// customNetworkScript returns the embedded script of a custom network provider.
func customNetworkScript(t testing.TB, provider string) string {
	t.Helper()
	script, err := luascripts.CustomNetwork(provider)
	if err != nil {
		t.Fatalf("cases under testdata/%s: %v", provider, err)
	}
	return string(script)
}

// assertStepError checks a refusal against the case's expectation.
func assertStepError(t *testing.T, err error, want *ExpectedError) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one at step %d containing %q", want.Step, want.Contains)
	}
	var stepErr *StepError
	if !errors.As(err, &stepErr) || stepErr.Step != want.Step {
		t.Errorf("error %v, want it at step %d", err, want.Step)
	}
	msg := ErrorMessage(err)
	if !strings.Contains(msg, want.Contains) {
		t.Errorf("error message %q does not contain %q", msg, want.Contains)
	}
	if strings.Contains(msg, "stack traceback") {
		t.Errorf("error message carries a Lua traceback: %q", msg)
	}
}

// assertNothingLost checks one step's object against the original: same labels, same annotations
// plus Kruise's saved original, the same spec outside rules, and every original rule that does
// not route to the stable Service unchanged at its index.
func assertNothingLost(t *testing.T, s CustomNetworkStep, original *unstructured.Unstructured, stable string) {
	t.Helper()
	if s.Restored {
		assertSameObject(t, fmt.Sprintf("step %d (restored)", s.Step), original, s.Object)
		return
	}
	if diff := cmp.Diff(original.GetLabels(), s.Object.GetLabels()); diff != "" {
		t.Errorf("step %d changed the labels (-original +step):\n%s", s.Step, diff)
	}
	annotations := s.Object.GetAnnotations()
	if annotations[OriginalSpecAnnotation] == "" {
		t.Errorf("step %d: Kruise's %s is missing", s.Step, OriginalSpecAnnotation)
	}
	delete(annotations, OriginalSpecAnnotation)
	if len(annotations) == 0 {
		annotations = nil
	}
	if diff := cmp.Diff(original.GetAnnotations(), annotations); diff != "" {
		t.Errorf("step %d changed the annotations (-original +step):\n%s", s.Step, diff)
	}
	want, err := jsonMap(original.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	got, err := jsonMap(s.Object.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	wantRules, _ := want["rules"].([]any)
	gotRules, _ := got["rules"].([]any)
	delete(want, "rules")
	delete(got, "rules")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("step %d changed the spec outside its rules (-original +step):\n%s", s.Step, diff)
	}
	if len(gotRules) < len(wantRules) {
		t.Fatalf("step %d has %d rules, the original %d", s.Step, len(gotRules), len(wantRules))
	}
	for i, r := range wantRules {
		if routesTo(r, stable) {
			continue
		}
		if diff := cmp.Diff(r, gotRules[i]); diff != "" {
			t.Errorf("step %d changed rule %d, which does not route to %s (-original +step):\n%s", s.Step, i+1, stable, diff)
		}
	}
}

// routesTo reports whether a rule (decoded JSON) has a backendRef to the Service name.
func routesTo(rule any, name string) bool {
	m, _ := rule.(map[string]any)
	refs, _ := m["backendRefs"].([]any)
	for _, r := range refs {
		ref, _ := r.(map[string]any)
		kind, hasKind := ref["kind"]
		if ref["name"] == name && (!hasKind || kind == "Service") {
			return true
		}
	}
	return false
}

// assertSameObject compares two objects' spec, labels and annotations as JSON.
func assertSameObject(t *testing.T, what string, want, got *unstructured.Unstructured) {
	t.Helper()
	w, err := jsonMap(map[string]any{"spec": want.Object["spec"], "labels": want.GetLabels(), "annotations": want.GetAnnotations()})
	if err != nil {
		t.Fatal(err)
	}
	g, err := jsonMap(map[string]any{"spec": got.Object["spec"], "labels": got.GetLabels(), "annotations": got.GetAnnotations()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s the object is not the original (-original +got):\n%s", what, diff)
	}
}

// rewriteCustomNetworkCase replaces only the expected results of a case file.
func rewriteCustomNetworkCase(t *testing.T, nc NamedCustomNetworkCase, got []ExpectedSpec, err error) {
	t.Helper()
	if err != nil {
		var stepErr *StepError
		if !errors.As(err, &stepErr) {
			t.Fatalf("cannot record error %v", err)
		}
		rewriteExpectation(t, filepath.Join(scriptsDir, nc.Path), "expectedError",
			ExpectedError{Step: stepErr.Step, Contains: strings.TrimPrefix(ErrorMessage(err), fmt.Sprintf("step %d: ", stepErr.Step))})
		return
	}
	rewriteExpectation(t, filepath.Join(scriptsDir, nc.Path), "expected", got)
}

// rewriteExpectation replaces the expected and expectedError keys of a case file with key: value,
// keeping what a person wrote.
func rewriteExpectation(t *testing.T, file, key string, value any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	kept := root.Content[:0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k != "expected" && k != "expectedError" {
			kept = append(kept, root.Content[i], root.Content[i+1])
		}
	}
	root.Content = kept
	var v yamlv3.Node
	if err := v.Encode(value); err != nil {
		t.Fatal(err)
	}
	root.Content = append(root.Content, &yamlv3.Node{Kind: yamlv3.ScalarNode, Value: key}, &v)
	var out bytes.Buffer
	enc := yamlv3.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
