package plugin

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openkruise/rollouts/pkg/util/luamanager"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

// benchInputs are the steps the script benchmarks run, per class type: the seed 002 lane step
// (a header match and the lane header set), a weighted step (20%, no matches), both of which our
// scripts serve on their fast path, and a step with a header ANDed with a query parameter, which
// takes any_step.lua (fast is false). Each is the first step of a golden case, run on the stable
// Ingress's annotations.
var benchInputs = map[string][]struct {
	name, path string
	fast       bool
}{
	"mse": {
		{"seed002", "trafficrouting_ingress/testdata/mse/seed002_header_match_lane_tag.yaml", true},
		{"weight", "trafficrouting_ingress/testdata/mse/weight_steps.yaml", true},
		{"andquery", "trafficrouting_ingress/testdata/mse/header_and_query.yaml", false},
	},
	"higress": {
		{"seed002", "trafficrouting_ingress/testdata/higress/seed002_on_higress.yaml", true},
		{"weight", "trafficrouting_ingress/testdata/higress/weight_steps.yaml", true},
		{"andquery", "trafficrouting_ingress/testdata/higress/header_and_query.yaml", false},
	},
}

// benchInput is the script input of the first step of the golden case at path.
func benchInput(b testing.TB, cases []NamedCase, path string) IngressInput {
	b.Helper()
	for _, nc := range cases {
		if nc.Path != path {
			continue
		}
		plan, err := nc.Case.Plan()
		if err != nil {
			b.Fatal(err)
		}
		weight, err := weightOf(plan.Steps[0].Traffic)
		if err != nil {
			b.Fatal(err)
		}
		return IngressInput{
			Annotations:           BuildCanaryIngress(nc.Case.Original, plan).Annotations,
			Weight:                weight,
			Matches:               plan.Steps[0].Matches,
			CanaryService:         plan.CanaryService,
			RequestHeaderModifier: plan.Steps[0].RequestHeaderModifier,
		}
	}
	b.Fatalf("golden case %s not found", path)
	return IngressInput{}
}

// BenchmarkIngressScripts runs each class's step inputs through Kruise's shipped script for that
// class (the baseline) and through ours, in one run, as Kruise's luamanager runs them. ratio
// alternates the two call by call (parse, compile and run on every call, as Kruise does) and
// reports each one's median and ours over Kruise's; call times each script on its own; parse
// (text to AST), compile (AST to bytecode) and run (a fresh sandbox like luamanager's, then the
// compiled chunk, including any chunk it loads) split the cost.
func BenchmarkIngressScripts(b *testing.B) {
	cases := loadCases(b)
	for _, class := range []string{"mse", "higress"} {
		ours, err := luascripts.Ingress(class)
		if err != nil {
			b.Fatal(err)
		}
		scripts := []struct{ name, text string }{{"kruise", kruiseScript(b, class+".lua")}, {"lanes", string(ours)}}
		for _, input := range benchInputs[class] {
			in := benchInput(b, cases[class], input.path)
			b.Run(class+"/"+input.name+"/ratio", func(b *testing.B) {
				benchRatio(b, scripts[0].text, scripts[1].text, in)
			})
			for _, s := range scripts {
				prefix := class + "/" + input.name + "/" + s.name
				b.Run(prefix+"/call", func(b *testing.B) {
					for b.Loop() {
						if _, err := RunIngressScript(s.text, in); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run(prefix+"/parse", func(b *testing.B) {
					b.SetBytes(int64(len(s.text)))
					for b.Loop() {
						if _, err := parse.Parse(strings.NewReader(s.text), "<string>"); err != nil {
							b.Fatal(err)
						}
					}
				})
				chunk, err := parse.Parse(strings.NewReader(s.text), "<string>")
				if err != nil {
					b.Fatal(err)
				}
				b.Run(prefix+"/compile", func(b *testing.B) {
					for b.Loop() {
						if _, err := lua.Compile(chunk, "<string>"); err != nil {
							b.Fatal(err)
						}
					}
				})
				proto, err := lua.Compile(chunk, "<string>")
				if err != nil {
					b.Fatal(err)
				}
				obj, err := in.ToLuaObject()
				if err != nil {
					b.Fatal(err)
				}
				b.Run(prefix+"/run", func(b *testing.B) {
					for b.Loop() {
						runProto(b, proto, obj)
					}
				})
			}
		}
	}
}

// benchRatio runs the same input through Kruise's script and ours alternately, call by call as
// Kruise runs them, so that both see the same machine at the same moment, and reports each one's
// median per call and ours over Kruise's (ratio, of the medians).
func benchRatio(b *testing.B, kruise, lanes string, in IngressInput) {
	var kruiseCalls, lanesCalls []time.Duration
	for b.Loop() {
		for _, run := range []struct {
			script string
			calls  *[]time.Duration
		}{{kruise, &kruiseCalls}, {lanes, &lanesCalls}} {
			start := time.Now()
			if _, err := RunIngressScript(run.script, in); err != nil {
				b.Fatal(err)
			}
			*run.calls = append(*run.calls, time.Since(start))
		}
	}
	k, l := median(kruiseCalls), median(lanesCalls)
	b.ReportMetric(float64(k.Microseconds()), "kruise-µs")
	b.ReportMetric(float64(l.Microseconds()), "lanes-µs")
	b.ReportMetric(float64(l)/float64(k), "ratio")
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// runProto runs a compiled script in a sandbox set up as luamanager.RunLuaScript sets up its own
// (the same libraries, a one-second deadline, obj as a global) and checks it returned a table.
func runProto(b *testing.B, proto *lua.FunctionProto, obj map[string]any) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.MathLibName, lua.OpenMath},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{luamanager.JsonLibName, luamanager.OpenJson},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	l.Push(l.NewFunctionFromProto(proto))
	if err := l.PCall(0, lua.MultRet, nil); err != nil {
		b.Fatal(err)
	}
	if l.Get(-1).Type() != lua.LTTable {
		b.Fatalf("the script returned %s, want a table", l.Get(-1).Type())
	}
}

// toLua converts the unstructured script input to Lua values as luamanager does.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}
