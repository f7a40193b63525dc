// Package chart tests the Helm chart in charts/lanes offline: helm lint, the rendered manifests of
// several value sets against golden files, the values schema, and the README's values table.
//
// The tests run the helm binary that `make tools` builds into .cache/bin (or $LANES_TOOLS_BIN).
// Without it they skip, so `go test ./...` stays fast and needs no tools; `make chart-test` sets
// LANES_REQUIRE_HELM=1, which turns a missing helm into a failure. Installing the chart into a real
// API server is the e2e suite's TestChartInstall.
package chart

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/test/toolbin"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current chart")

const (
	chartDir = "../../charts/lanes"
	release  = "lanes"
	relNS    = "lanes-system"
)

// helmBin returns the helm binary, skipping (or failing under LANES_REQUIRE_HELM) when it is absent.
func helmBin(t *testing.T) string { return toolbin.Path(t, "helm", "LANES_REQUIRE_HELM") }

// helm runs helm with its own config, cache and data folders, so a test never reads or writes the
// user's helm state.
func helm(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helmBin(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// valueSets are the rendered configurations, each with testdata/<name>.values.yaml (none for
// default) and testdata/<name>.golden.yaml.
var valueSets = []string{"default", "certmanager-servicemonitor", "class-prefix", "providers-disabled", "mesh-routes", "watch-namespaces", "lane-validation-disabled"}

func valuesArgs(t *testing.T, name string) []string {
	t.Helper()
	if name == "default" {
		return nil
	}
	path := filepath.Join("testdata", name+".values.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return []string{"-f", path}
}

func TestChartLint(t *testing.T) {
	for _, name := range valueSets {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir, "-n", relNS}, valuesArgs(t, name)...)
			out, errOut, err := helm(t, args...)
			if err != nil {
				t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
			}
			// Lint INFO lines (an icon is recommended) are advice; warnings fail under --strict.
			if strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Errorf("helm lint reports problems:\n%s", out)
			}
		})
	}
}

func TestChartTemplates(t *testing.T) {
	for _, name := range valueSets {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"template", release, chartDir, "-n", relNS}, valuesArgs(t, name)...)
			got, errOut, err := helm(t, args...)
			if err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, errOut)
			}
			golden := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run `go test ./test/chart -update` to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("helm template with %s differs from %s (-want +got); if intended, rerun with -update and review the diff:\n%s", name, golden, diff)
			}
			checkManifests(t, got)
		})
	}
}

// checkManifests asserts what must hold for every value set, beyond the golden text: every
// document parses, RBAC never grants "*", and the webhook's policy is explicit.
func checkManifests(t *testing.T, rendered string) {
	t.Helper()
	for _, doc := range strings.Split(rendered, "\n---\n") {
		obj := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, doc)
		}
		kind, _ := obj["kind"].(string)
		switch kind {
		case "ClusterRole", "Role":
			rules, _ := obj["rules"].([]any)
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				for _, field := range []string{"apiGroups", "resources", "verbs"} {
					items, _ := rule[field].([]any)
					if slices.Contains(items, any("*")) {
						t.Errorf("%s grants %s \"*\": %v", kind, field, rule)
					}
				}
			}
		case "MutatingWebhookConfiguration":
			hooks, _ := obj["webhooks"].([]any)
			for _, h := range hooks {
				hook, _ := h.(map[string]any)
				for _, field := range []string{"failurePolicy", "sideEffects", "timeoutSeconds", "matchPolicy", "namespaceSelector"} {
					if _, ok := hook[field]; !ok {
						t.Errorf("webhook %v does not set %s", hook["name"], field)
					}
				}
			}
		}
	}
}

func TestChartSchemaRejects(t *testing.T) {
	cases := map[string]struct {
		set  []string
		want string
	}{
		"unknown dialect": {set: []string{"lanes.dialects={mse,nope}"}, want: "/lanes/dialects/1"},
		"no dialect":      {set: []string{"lanes.dialects=null"}, want: "dialects"},
		"empty dialects":  {set: []string{"lanes.dialects={}"}, want: "/lanes/dialects"},
		"timeout too long": {
			set: []string{"webhook.timeoutSeconds=30"}, want: "/webhook/timeoutSeconds",
		},
		"timeout zero":          {set: []string{"webhook.timeoutSeconds=0"}, want: "/webhook/timeoutSeconds"},
		"timeout not a number":  {set: []string{"webhook.timeoutSeconds=soon"}, want: "/webhook/timeoutSeconds"},
		"unknown provider":      {set: []string{"providers.install={mse,nginx}"}, want: "/providers/install/1"},
		"unknown cert mode":     {set: []string{"certificates.mode=manual"}, want: "/certificates/mode"},
		"unknown failurePolicy": {set: []string{"webhook.failurePolicy=Retry"}, want: "/webhook/failurePolicy"},
		"misspelled key":        {set: []string{"webhook.timeoutSecond=3"}, want: "timeoutSecond"},
		"drain not a duration":  {set: []string{"meshRoutes.drain=soon"}, want: "/meshRoutes/drain"},
		"bad selector operator": {
			set:  []string{"webhook.namespaceSelector.matchExpressions[0].key=x", "webhook.namespaceSelector.matchExpressions[0].operator=Has"},
			want: "/webhook/namespaceSelector/matchExpressions/0/operator",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := []string{"template", release, chartDir, "-n", relNS}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, errOut, err := helm(t, args...)
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) {
				t.Fatalf("helm %s: err = %v, want a schema rejection mentioning %q", strings.Join(args, " "), err, tc.want)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("helm %s rejected the values but its message does not mention %q:\n%s", strings.Join(args, " "), tc.want, errOut)
			}
		})
	}
}

// TestREADMEValuesTable checks the README's values table against values.yaml: every leaf value is
// covered by a row (its own key, or an ancestor's for a free-form map like manager.resources), every
// row names a key that exists, and every row's default is the value in values.yaml.
func TestREADMEValuesTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.]+)` \\| `([^`]*)` \\| (.+) \\|$")
	rows := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("README values table lists %s twice", m[1])
		}
		rows[m[1]] = m[2]
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no values table rows (| `key` | `default` | description |)")
	}
	for key, cell := range rows {
		want, ok := lookup(values, key)
		if !ok {
			t.Errorf("README values table lists %s, which values.yaml does not have", key)
			continue
		}
		var got any
		if err := yaml.Unmarshal([]byte(cell), &got); err != nil {
			t.Errorf("README default of %s, %q, is not YAML: %v", key, cell, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("README default of %s differs from values.yaml (-values.yaml +README):\n%s", key, diff)
		}
	}
	for _, leaf := range leaves(values, "") {
		covered := false
		for key := range rows {
			if leaf == key || strings.HasPrefix(leaf, key+".") {
				covered = true
				break
			}
		}
		if !covered {
			t.Errorf("values.yaml key %s is missing from the README values table", leaf)
		}
	}
}

// leaves lists the dotted paths of every non-map value and every empty map under v.
func leaves(v map[string]any, prefix string) []string {
	var out []string
	for k, child := range v {
		path := prefix + k
		if m, ok := child.(map[string]any); ok && len(m) > 0 {
			out = append(out, leaves(m, path+".")...)
			continue
		}
		out = append(out, path)
	}
	slices.Sort(out)
	return out
}

func lookup(v map[string]any, dotted string) (any, bool) {
	var cur any = v
	for _, part := range strings.Split(dotted, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}
