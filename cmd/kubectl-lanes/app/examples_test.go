package app

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestJenkinsfileCommandsParse keeps examples/jenkins/Jenkinsfile in step with the CLI: every
// `kubectl lanes` command it runs names a verb that exists, with flags that verb takes and the
// number of arguments it accepts. (No Jenkins runs here; the same flow runs against the real
// control plane in TestCLILaneLifecycle and TestExampleGrayEnvPipeline.)
func TestJenkinsfileCommandsParse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "jenkins", "Jenkinsfile"))
	if err != nil {
		t.Fatal(err)
	}
	params := regexp.MustCompile(`"\$([A-Z_]+)"`)
	var lines []string
	for _, m := range regexp.MustCompile(`sh 'kubectl lanes ([^']*)'`).FindAllStringSubmatch(string(raw), -1) {
		lines = append(lines, m[1])
	}
	if len(lines) < 5 {
		t.Fatalf("found %d kubectl lanes commands in the Jenkinsfile, want the whole flow (wait, status, trace, approve, rollback)", len(lines))
	}
	verbs := map[string]bool{}
	for _, line := range lines {
		line = strings.TrimSuffix(line, " || true")
		line = params.ReplaceAllStringFunc(line, func(p string) string { return strings.ToLower(params.FindStringSubmatch(p)[1]) })
		args := strings.Fields(line)
		var out bytes.Buffer
		root := NewRootCommand(genericiooptions.IOStreams{Out: &out, ErrOut: &out})
		cmd, rest, err := root.Find(args)
		if err != nil || cmd == root {
			t.Errorf("%q: no such verb (%v)", line, err)
			continue
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if cmd.Args != nil {
			if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
				t.Errorf("%q: %v", line, err)
			}
		}
		verbs[cmd.Name()] = true
	}
	for _, v := range []string{"wait", "status", "trace", "approve", "rollback"} {
		if !verbs[v] {
			t.Errorf("the Jenkinsfile no longer runs kubectl lanes %s", v)
		}
	}
}

// TestJenkinsfileNeverInterpolatesIntoShell: a Groovy-interpolated `sh "...${params.X}..."` puts a
// build parameter's text into shell code, so a value such as `x; rm -rf ~` would run. Every sh
// step must be a single-quoted Groovy string that reads the parameters from the environment, in
// double quotes.
func TestJenkinsfileNeverInterpolatesIntoShell(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "jenkins", "Jenkinsfile"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(raw)
	if m := regexp.MustCompile(`\bsh\s*\(?\s*"`).FindAllString(src, -1); len(m) > 0 {
		t.Errorf("%d sh steps use a double-quoted (interpolating) Groovy string", len(m))
	}
	if strings.Contains(src, "${") {
		t.Error("the Jenkinsfile interpolates ${...} into a Groovy string")
	}
	for _, p := range []string{"NAMESPACE", "LANE", "VERSION", "SERVICES"} {
		if !strings.Contains(src, `"$`+p) {
			t.Errorf("parameter %s is never read from the environment in double quotes", p)
		}
	}
}
