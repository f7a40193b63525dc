package plugin

import (
	"testing"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

// BenchmarkMSESeed002 runs the seed 002 lane step through Kruise's shipped mse.lua (the baseline)
// and through ours, on the same runtime, so `go test -bench` prints both in one run.
func BenchmarkMSESeed002(b *testing.B) {
	var seed *IngressCase
	for _, nc := range loadCases(b)["mse"] {
		if nc.Path == "trafficrouting_ingress/testdata/mse/seed002_header_match_lane_tag.yaml" {
			seed = &nc.Case
		}
	}
	if seed == nil {
		b.Fatal("seed 002 case not found")
	}
	plan, err := seed.Plan()
	if err != nil {
		b.Fatal(err)
	}
	stable := BuildCanaryIngress(seed.Original, plan)
	in := IngressInput{
		Annotations:           stable.Annotations,
		Weight:                NoWeight,
		Matches:               plan.Steps[0].Matches,
		CanaryService:         plan.CanaryService,
		RequestHeaderModifier: plan.Steps[0].RequestHeaderModifier,
	}
	ours, err := luascripts.Ingress("mse")
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []struct{ name, script string }{{"kruise", kruiseScript(b, "mse.lua")}, {"lanes", string(ours)}} {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := RunIngressScript(s.script, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
