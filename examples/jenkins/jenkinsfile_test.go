// Package jenkins holds the seed 000 Jenkins pipeline; this test keeps it free of shell injection.
package jenkins

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestJenkinsfileNeverInterpolatesIntoShell: a Groovy-interpolated `sh "...${params.X}..."` puts a
// build parameter's text into shell code; a value such as `x; rm -rf ~` would run. Every sh step
// must be a single-quoted string (the shell reads parameters from the environment) and nothing may
// interpolate ${...} into Groovy strings.
func TestJenkinsfileNeverInterpolatesIntoShell(t *testing.T) {
	b, err := os.ReadFile("Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
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
