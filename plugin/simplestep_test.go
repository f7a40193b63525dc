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

// The ingress providers carry two step chunks as long strings (luascripts/trafficrouting_ingress/
// lib/canary.lua): simple_step.lua for the common lane step, and any_step.lua, which handles every
// step and refuses what cannot be expressed. simple_step.lua is an optimisation only: these tests
// run the shipped script against variants with one chunk replaced, and require the results to be
// the same, step by step and sentence by sentence.

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

// withoutSimpleStep is script with simple_step.lua declining every step.
func withoutSimpleStep(t testing.TB, script string) string {
	return replaceChunk(t, script, "SIMPLE_STEP", "return nil")
}

// simpleStepOnly is script failing every step that simple_step.lua declines.
func simpleStepOnly(t testing.TB, script string) string {
	return replaceChunk(t, script, "ANY_STEP", `error("simple_step.lua declined the step",0)`)
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

// TestIngressSimpleStepAgrees replays every golden case of each ingress provider with the shipped
// script and with simple_step.lua switched off: the outcomes must be the same. It also checks
// which path the benchmark's inputs take (seed 002's lane step and a weighted step take
// simple_step.lua throughout, the AND of a header and a query any_step.lua), and that some cases
// reach any_step.lua, so that the agreement is not vacuous.
func TestIngressSimpleStepAgrees(t *testing.T) {
	all := loadCases(t)
	for _, provider := range luascripts.IngressProviders() {
		t.Run(provider, func(t *testing.T) {
			b, err := luascripts.Ingress(provider)
			if err != nil {
				t.Fatal(err)
			}
			shipped := string(b)
			general, simple := withoutSimpleStep(t, shipped), simpleStepOnly(t, shipped)
			var simpleCases, declined []string
			for _, nc := range all[provider] {
				want := replayOutcome(nc.Case, general)
				if got := replayOutcome(nc.Case, shipped); got != want {
					t.Errorf("%s: simple_step.lua changes the outcome (-any_step.lua only +shipped):\n%s", nc.Path, cmp.Diff(want, got))
				}
				if replayOutcome(nc.Case, simple) == want {
					simpleCases = append(simpleCases, nc.Path)
				} else {
					declined = append(declined, nc.Path)
				}
			}
			for _, input := range benchInputs[provider] {
				if slices.Contains(simpleCases, input.path) != input.simple {
					t.Errorf("benchmark input %s: takes simple_step.lua on every step = %t, want %t", input.path, !input.simple, input.simple)
				}
			}
			t.Logf("%d cases take simple_step.lua on every step, %d reach any_step.lua", len(simpleCases), len(declined))
			if len(declined) == 0 {
				t.Error("no case reaches any_step.lua")
			}
		})
	}
}
