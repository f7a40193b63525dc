package analysis

import (
	"strings"
	"testing"
	"time"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

func demoVars() Vars {
	return Vars{Namespace: "lanes-demo", Lane: "mse-traffic", Tag: "gray", Header: "x-mse-tag", Interval: "1m",
		Subset: "gray", Service: "spring-cloud-a", Workload: "spring-cloud-a", Rollout: "rollout-a"}
}

func TestRender(t *testing.T) {
	for name, c := range map[string]struct {
		tmpl    string
		vars    Vars
		want    string
		wantErr string
	}{
		"every variable": {
			tmpl: `{{namespace}} {{ lane }} {{tag}} {{ header }} {{interval}} {{subset}} {{service}} {{workload}} {{rollout}}`,
			vars: demoVars(),
			want: `lanes-demo mse-traffic gray x-mse-tag 1m gray spring-cloud-a spring-cloud-a rollout-a`,
		},
		"demo error rate": {
			tmpl: `sum(rate(lane_demo_requests_total{service="{{ service }}",lane="{{ subset }}",code=~"5.."}[{{ interval }}])) / sum(rate(lane_demo_requests_total{service="{{ service }}",lane="{{ subset }}"}[{{ interval }}]))`,
			vars: demoVars(),
			want: `sum(rate(lane_demo_requests_total{service="spring-cloud-a",lane="gray",code=~"5.."}[1m])) / sum(rate(lane_demo_requests_total{service="spring-cloud-a",lane="gray"}[1m]))`,
		},
		"no variable":        {tmpl: `up`, want: `up`},
		"PromQL braces stay": {tmpl: `sum(x{a="b"})`, want: `sum(x{a="b"})`},
		"unknown variable":   {tmpl: `x{a="{{ version }}"}`, vars: demoVars(), wantErr: "{{ version }}, which is not a variable"},
		"Go template syntax": {tmpl: `x{a="{{ .Tag }}"}`, vars: demoVars(), wantErr: "{{ .Tag }}, which is not a variable"},
		"unmatched open":     {tmpl: `x{a="{{ tag "}`, vars: demoVars(), wantErr: `unmatched "{{"`},
		"unmatched close":    {tmpl: `x{a="tag }}"}`, vars: demoVars(), wantErr: `unmatched "}}"`},
		"empty value":        {tmpl: `x{s="{{ service }}"}`, vars: Vars{Tag: "gray"}, wantErr: "{{ service }}, which has no value here"},
		"quote in value":     {tmpl: `x{t="{{ tag }}"}`, vars: Vars{Tag: `gray"} or vector(1) #`}, wantErr: "could break the query"},
		"backslash in value": {tmpl: `x{t="{{ tag }}"}`, vars: Vars{Tag: `gray\`}, wantErr: "could break the query"},
		"newline in value":   {tmpl: `x{t="{{ tag }}"}`, vars: Vars{Tag: "gray\nup"}, wantErr: "could break the query"},
		"brace in value":     {tmpl: `x{t="{{ tag }}"}`, vars: Vars{Tag: "gr}ay"}, wantErr: "could break the query"},
		"space in value":     {tmpl: `x{t="{{ tag }}"}`, vars: Vars{Tag: "gr ay"}, wantErr: "could break the query"},
		"overlong value":     {tmpl: `x{t="{{ tag }}"}`, vars: Vars{Tag: strings.Repeat("a", 254)}, wantErr: "could break the query"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Render(c.tmpl, c.vars)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Render = %q, %v; want an error containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Render = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestCheckTemplateScope(t *testing.T) {
	for name, c := range map[string]struct {
		tmpl    string
		scope   lanesv1alpha1.Scope
		wantErr string
	}{
		"hop variable per member": {tmpl: `x{s="{{ service }}"}`, scope: lanesv1alpha1.ScopeMember},
		"hop variable per hop":    {tmpl: `x{r="{{ rollout }}"}`, scope: lanesv1alpha1.ScopeHop},
		"lane variable lane-wide": {tmpl: `x{t="{{ tag }}"}`, scope: lanesv1alpha1.ScopeLane},
		"service lane-wide":       {tmpl: `x{s="{{ service }}"}`, scope: lanesv1alpha1.ScopeLane, wantErr: "a lane-wide query has no hop"},
		"workload lane-wide":      {tmpl: `x{w="{{ workload }}"}`, scope: lanesv1alpha1.ScopeLane, wantErr: "a lane-wide query has no hop"},
		"unknown anywhere":        {tmpl: `x{w="{{ pod }}"}`, scope: lanesv1alpha1.ScopeHop, wantErr: "not a variable"},
	} {
		t.Run(name, func(t *testing.T) {
			err := CheckTemplate(c.tmpl, c.scope)
			if c.wantErr == "" && err != nil {
				t.Fatalf("CheckTemplate: %v", err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("CheckTemplate = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute:                       "1m",
		90 * time.Second:                  "1m30s",
		30 * time.Second:                  "30s",
		time.Hour + 1500*time.Millisecond: "1h1s",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
