package plugin

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

// The ingress providers read the steps lanes run most in their entry (the fast path of
// luascripts/trafficrouting_ingress/lib/canary.lua) and hand every other step, the one it
// declines, to any_step.lua, a chunk they carry as a long string, which handles every step and
// refuses what cannot be expressed. The fast path is an optimisation only: these tests run the
// shipped script against variants with one path switched off, and require the results to be the
// same, step by step and sentence by sentence.

// embeddedChunk matches the declaration of an embedded chunk: `local NAME=[==[`.
var embeddedChunk = regexp.MustCompile(`local ([A-Z_]+)=\[(=*)\[`)

// replaceChunk returns script with the text of its embedded chunk name replaced by text.
func replaceChunk(t testing.TB, script, name, text string) string {
	t.Helper()
	for _, m := range embeddedChunk.FindAllStringSubmatchIndex(script, -1) {
		if script[m[2]:m[3]] != name {
			continue
		}
		closing := "]" + script[m[4]:m[5]] + "]"
		end := strings.Index(script[m[1]:], closing)
		if end < 0 {
			t.Fatalf("chunk %s is not closed", name)
		}
		return script[:m[1]] + text + script[m[1]+end:]
	}
	t.Fatalf("the script embeds no chunk %s", name)
	return ""
}

// fastPathDecision ends the entry's condition under which any_step.lua takes the step.
const fastPathDecision = "then loadstring(ANY_STEP)()"

// withoutFastPath is script with the fast path declining every step: its condition ORed with
// true.
func withoutFastPath(t testing.TB, script string) string {
	t.Helper()
	if n := strings.Count(script, fastPathDecision); n != 1 {
		t.Fatalf("the script has %d statements %q, want 1", n, fastPathDecision)
	}
	return strings.Replace(script, fastPathDecision, "or true "+fastPathDecision, 1)
}

// fastPathOnly is script failing every step that the fast path declines.
func fastPathOnly(t testing.TB, script string) string {
	return replaceChunk(t, script, "ANY_STEP", `error("the fast path declined the step",0)`)
}

// replayOutcome is what a user sees of a case: each step's annotations, then the refusal.
func replayOutcome(c IngressCase, script string) string {
	steps, err := c.Run(script)
	out := fmt.Sprintf("%+v", steps)
	if err != nil {
		out += "\nerror: " + ErrorMessage(err)
	}
	return out
}

// TestIngressFastPathAgrees replays every golden case of each ingress provider with the shipped
// script and with the fast path switched off: the outcomes must be the same. It also checks which
// path the benchmark's inputs take (seed 002's lane step and a weighted step take the fast path
// throughout, the AND of a header and a query any_step.lua), and that some cases take each path,
// so that the agreement is not vacuous.
func TestIngressFastPathAgrees(t *testing.T) {
	all := loadCases(t)
	for _, provider := range luascripts.IngressProviders() {
		t.Run(provider, func(t *testing.T) {
			b, err := luascripts.Ingress(provider)
			if err != nil {
				t.Fatal(err)
			}
			shipped := string(b)
			general, fast := withoutFastPath(t, shipped), fastPathOnly(t, shipped)
			var fastCases, declined []string
			for _, nc := range all[provider] {
				want := replayOutcome(nc.Case, general)
				if got := replayOutcome(nc.Case, shipped); got != want {
					t.Errorf("%s: the fast path changes the outcome (-any_step.lua only +shipped):\n%s", nc.Path, cmp.Diff(want, got))
				}
				if replayOutcome(nc.Case, fast) == want {
					fastCases = append(fastCases, nc.Path)
				} else {
					declined = append(declined, nc.Path)
				}
			}
			for _, input := range benchInputs[provider] {
				if slices.Contains(fastCases, input.path) != input.fast {
					t.Errorf("benchmark input %s: takes the fast path on every step = %t, want %t", input.path, !input.fast, input.fast)
				}
			}
			t.Logf("%d cases take the fast path on every step, %d reach any_step.lua", len(fastCases), len(declined))
			if len(declined) == 0 {
				t.Error("no case reaches any_step.lua")
			}
			if len(fastCases) == 0 {
				t.Error("no case takes the fast path on every step")
			}
		})
	}
}
