package app

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

var update = flag.Bool("update", false, "rewrite the golden outputs")

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(t.Context(), args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", file, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	tests := map[string]struct {
		args   []string
		golden string
	}{
		"seed 002 lane, mse": {
			args:   []string{"render", "-f", "testdata/seed002.yaml"},
			golden: "seed002.golden.yaml",
		},
		"examples/mse, the documented lane": {
			args:   []string{"render", "-f", "../../../examples/mse/lane.yaml", "-f", "../../../examples/mse/ingress.yaml", "-f", "../../../examples/mse/app.yaml"},
			golden: "seed002.golden.yaml",
		},
		"rollout with weight steps, higress, json": {
			args:   []string{"render", "-f", "testdata/rollout_weight.yaml", "-o", "json"},
			golden: "rollout_weight.golden.json",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			golden(t, tc.golden, out)
		})
	}
}

func TestRenderSeedCanaryIngress(t *testing.T) {
	out, _, code := run(t, "render", "-f", "testdata/seed002.yaml", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var steps []struct {
		Step          int `json:"step"`
		CanaryIngress struct {
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				Rules []struct {
					HTTP struct {
						Paths []struct {
							Backend struct {
								Service struct {
									Name string `json:"name"`
								} `json:"service"`
							} `json:"backend"`
						} `json:"paths"`
					} `json:"http"`
				} `json:"rules"`
			} `json:"spec"`
		} `json:"canaryIngress"`
	}
	if err := json.Unmarshal([]byte(out), &steps); err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 {
		t.Fatalf("%d steps, want the TrafficRouting's one", len(steps))
	}
	ing := steps[0].CanaryIngress
	if ing.Metadata.Name != "spring-cloud-a-canary" {
		t.Errorf("name %q", ing.Metadata.Name)
	}
	if got := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != "spring-cloud-a" {
		t.Errorf("backend %q, want the stable Service in shared TrafficRouting mode", got)
	}
	for k, v := range map[string]string{
		"nginx.ingress.kubernetes.io/canary":                      "true",
		"nginx.ingress.kubernetes.io/canary-by-header":            "User-Agent",
		"nginx.ingress.kubernetes.io/canary-by-header-value":      "xiaoming",
		"mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag gray",
		"mse.ingress.kubernetes.io/service-subset":                "gray",
	} {
		if got := ing.Metadata.Annotations[k]; got != v {
			t.Errorf("annotation %s = %q, want %q", k, got, v)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("kind: [unclosed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args []string
		want string
	}{
		"unknown class": {
			args: []string{"render", "-f", "testdata/seed002.yaml", "--class", "nginx"},
			want: `no provider script for ingress class type "nginx"`,
		},
		"missing stable ingress": {
			args: []string{"render", "-f", "testdata/bad_header.yaml", "--name", "nothing"},
			want: `no TrafficRouting or Rollout named "nothing"`,
		},
		"CRLF in injected header": {
			args: []string{"render", "-f", "testdata/bad_header.yaml"},
			want: `trafficrouting lane cannot be rendered with the mse provider: step 1: mse ingress provider: requestHeaderModifier.set header "x-mse-tag" has a value with CR, LF or NUL`,
		},
		"malformed yaml": {
			args: []string{"render", "-f", bad},
			want: "document 1, is not valid YAML",
		},
		"no file": {
			args: []string{"render"},
			want: "render needs -f FILE",
		},
		"bad output format": {
			args: []string{"render", "-f", "testdata/seed002.yaml", "-o", "table"},
			want: `output format "table" is not supported`,
		},
		"scripts file is not a configmap": {
			args: []string{"render", "-f", "testdata/seed002.yaml", "--scripts", "testdata/seed002.yaml"},
			want: "is not a ConfigMap manifest",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := run(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stdout %q", out)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing on failure", out)
			}
			if !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("stderr %q, want one line containing %q", errOut, tc.want)
			}
		})
	}
}

func TestRenderWithScriptsConfigMap(t *testing.T) {
	cm := filepath.Join(t.TempDir(), "cm.yaml")
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kruise-rollout-configuration\ndata:\n" +
		"  lua.traffic.routing.ingress.nginx: |\n    local a = obj.annotations or {}\n    a[\"custom\"] = obj.weight\n    a[\"nginx.ingress.kubernetes.io/canary\"] = \"true\"\n    return a\n"
	if err := os.WriteFile(cm, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, "render", "-f", "testdata/seed002.yaml", "--class", "nginx", "--scripts", cm)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `custom: "-1"`) {
		t.Errorf("the ConfigMap's script was not used:\n%s", out)
	}
}
