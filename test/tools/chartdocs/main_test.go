package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	repoChart  = "../../../charts/lanes"
	repoReadme = "../../../README.md"
)

// TestGeneratedFilesAreCurrent fails when values.schema.json or the README's values table is not
// what `make generate` makes from the committed values.yaml.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	if err := run([]string{"-check", "-chart", repoChart, "-readme", repoReadme}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

// scratch copies the chart's Chart.yaml and values.yaml (edited by edit) and the README into a
// temporary folder, and returns the chart folder and the README.
func scratch(t *testing.T, edit func(values string) string) (chart, readme string) {
	t.Helper()
	dir := t.TempDir()
	chart = filepath.Join(dir, "chart")
	if err := os.Mkdir(chart, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, to string, edit func(string) string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		if edit != nil {
			s = edit(s)
		}
		if err := os.WriteFile(to, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(filepath.Join(repoChart, "Chart.yaml"), filepath.Join(chart, "Chart.yaml"), nil)
	copyFile(filepath.Join(repoChart, "values.yaml"), filepath.Join(chart, "values.yaml"), edit)
	copyFile(filepath.Join(repoChart, "values.schema.json"), filepath.Join(chart, "values.schema.json"), nil)
	readme = filepath.Join(dir, "README.md")
	copyFile(repoReadme, readme, nil)
	return chart, readme
}

func replaceOnce(t *testing.T, s, old, repl string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("values.yaml does not hold %q exactly once", old)
	}
	return strings.Replace(s, old, repl, 1)
}

func TestEditedValuesRegenerate(t *testing.T) {
	chart, readme := scratch(t, func(v string) string {
		v = replaceOnce(t, v, "# @schema required; minimum: 1; maximum: 5\n", "# @schema required; minimum: 1; maximum: 7\n")
		return replaceOnce(t, v, "# -- Port the webhook server listens on inside the pod.", "# -- The webhook server's port in the pod.")
	})
	err := run([]string{"-check", "-chart", chart, "-readme", readme}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "values.schema.json and") || !strings.Contains(err.Error(), "README.md not generated") {
		t.Fatalf("-check after editing values.yaml: err = %v, want both files named stale", err)
	}
	var out bytes.Buffer
	if err := run([]string{"-chart", chart, "-readme", readme}, &out); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-check", "-chart", chart, "-readme", readme}, &bytes.Buffer{}); err != nil {
		t.Fatalf("-check right after generating: %v", err)
	}

	raw, err := os.ReadFile(filepath.Join(chart, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]struct {
			Properties map[string]struct {
				Maximum     *float64 `json:"maximum"`
				Description string   `json:"description"`
			} `json:"properties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	webhook := schema.Properties["webhook"].Properties
	if m := webhook["timeoutSeconds"].Maximum; m == nil || *m != 7 {
		t.Errorf("schema webhook.timeoutSeconds maximum = %v, want the annotation's 7", m)
	}
	if d := webhook["port"].Description; d != "The webhook server's port in the pod." {
		t.Errorf("schema webhook.port description = %q, want the `# --` comment", d)
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "| `webhook.port` | `9443` | The webhook server's port in the pod. |\n") {
		t.Errorf("README's table lacks the edited row for webhook.port")
	}
	// The README outside the markers is left as it was.
	orig, err := os.ReadFile(repoReadme)
	if err != nil {
		t.Fatal(err)
	}
	if before, _, _ := strings.Cut(string(orig), tableStart); !strings.HasPrefix(string(doc), before+tableStart) {
		t.Errorf("the README before the table changed")
	}
	if _, after, _ := strings.Cut(string(orig), tableEnd); !strings.HasSuffix(string(doc), tableEnd+after) {
		t.Errorf("the README after the table changed")
	}
}

func TestUndescribedOrSplittingRowsAreRefused(t *testing.T) {
	cases := map[string]func(string) string{
		"no description": func(v string) string {
			return replaceOnce(t, v, "    # -- Image tag; empty means the chart's appVersion.\n", "")
		},
		"a | in a description": func(v string) string {
			return replaceOnce(t, v, "# -- Port of /healthz and /readyz.", "# -- Port of /healthz | /readyz.")
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			chart, readme := scratch(t, edit)
			err := run([]string{"-chart", chart, "-readme", readme}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), "give the key a `# --` description") {
				t.Errorf("err = %v, want a refusal naming the row", err)
			}
		})
	}
}

func TestSpliceNeedsBothMarkers(t *testing.T) {
	table := []byte("| Key | Default | What it sets |\n")
	for name, doc := range map[string]string{
		"none":       "# README\n",
		"no end":     "a\n" + tableStart + "\nold\n",
		"reversed":   tableEnd + "\n" + tableStart + "\n",
		"start once": tableStart + "\n" + tableStart + "\n" + tableEnd + "\n",
	} {
		if _, err := splice([]byte(doc), table); err == nil {
			t.Errorf("%s: splice accepted a README without one start and one end marker in order", name)
		}
	}
	got, err := splice([]byte("a\n"+tableStart+"\nold table\n"+tableEnd+"\nb\n"), table)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + tableStart + "\n" + string(table) + "\n" + tableEnd + "\nb\n"; string(got) != want {
		t.Errorf("splice = %q, want %q", got, want)
	}
}
