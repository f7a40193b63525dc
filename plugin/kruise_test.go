package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

// kruiseScript reads a script Kruise v0.6.2 ships from the module cache (never from this repo).
func kruiseScript(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/openkruise/rollouts").Output()
	if err != nil {
		t.Fatalf("locate the Kruise Rollouts module: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	b, err := os.ReadFile(filepath.Join(dir, "lua_configuration", "trafficrouting_ingress", name))
	if err != nil {
		t.Fatalf("read Kruise's %s: %v", name, err)
	}
	return string(b)
}

// withoutBookkeeping drops the keys our scripts use to remember what they own (and those of the
// scripts before kruise-lanes.io/owned).
func withoutBookkeeping(steps []ExpectedStep) []ExpectedStep {
	out := make([]ExpectedStep, 0, len(steps))
	for _, s := range steps {
		c := ExpectedStep{Step: s.Step, NoCanaryIngress: s.NoCanaryIngress}
		for k, v := range s.Annotations {
			switch k {
			case "kruise-lanes.io/owned", "kruise-lanes.io/owned-keys", "kruise-lanes.io/preserved":
				continue
			}
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations[k] = v
		}
		out = append(out, c)
	}
	return out
}

// TestCompareWithKruiseMSE runs Kruise's shipped mse.lua on every mse golden case: where the case
// says nothing, both scripts must produce the same canary Ingress; where it names a difference,
// they must differ, and the difference is logged.
func TestCompareWithKruiseMSE(t *testing.T) {
	kruise := kruiseScript(t, "mse.lua")
	ours, err := luascripts.Ingress("mse")
	if err != nil {
		t.Fatal(err)
	}
	cases := loadCases(t)["mse"]
	if len(cases) == 0 {
		t.Fatal("no mse golden case")
	}
	differences := 0
	for _, nc := range cases {
		t.Run(filepath.Base(nc.Path), func(t *testing.T) {
			want, ourErr := nc.Case.Run(string(ours))
			got, kruiseErr := nc.Case.Run(kruise)
			var diff string
			switch {
			case ourErr != nil && kruiseErr != nil:
				diff = ""
			case ourErr != nil:
				diff = "ours refuses (" + ErrorMessage(ourErr) + "), Kruise's accepts"
			case kruiseErr != nil:
				diff = "Kruise's fails: " + ErrorMessage(kruiseErr)
			default:
				diff = cmp.Diff(withoutBookkeeping(want), got)
			}
			switch {
			case diff == "" && nc.Case.KruiseDiffers != "":
				t.Errorf("case says Kruise differs (%s), but both scripts agree", nc.Case.KruiseDiffers)
			case diff != "" && nc.Case.KruiseDiffers == "":
				t.Errorf("Kruise's mse.lua differs and the case does not say why (-ours +kruise):\n%s", diff)
			case diff != "":
				differences++
				t.Logf("differs as documented: %s\n(-ours +kruise):\n%s", nc.Case.KruiseDiffers, diff)
			}
		})
	}
	t.Logf("%d of %d mse cases differ from Kruise v0.6.2's mse.lua", differences, len(cases))
}
