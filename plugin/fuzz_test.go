package plugin

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

// FuzzIngressScripts feeds arbitrary weights, match conditions, header modifications and existing
// annotations to both providers. A script may refuse the input only with its own validation
// sentence; it must never fail at run time, and what it returns must be safe to apply. The
// script's fast path changes nothing: with it switched off the outcome is the same. shape drops
// parts of the step, so that every shape the fast path reads is fuzzed: bit 1 the header's type,
// 2 the matches, 4 the header modifier, 8 the stable Ingress's header control annotation, and 16
// puts that annotation under higress.io/ instead of mse.ingress.kubernetes.io/.
func FuzzIngressScripts(f *testing.F) {
	f.Add("20", "User-Agent", "xiaoming", false, "lane", "gray", "x-mse-tag", "gray", "x-internal", "", true, uint8(0))
	f.Add("-1", "canary-by-cookie", "c", false, "", "", "x-mse-tag", "blue", "", "x-mse-tag gray", false, uint8(0))
	f.Add("-1", "x-a", ".*", true, "q", "(", "bad name", "v\r\nx: y", "a,b", "x-old 1\nx-older 2", true, uint8(0))
	f.Add("0", "", "", false, "", "", "", "", "", "", false, uint8(0))
	f.Add("20", "User-Agent", "xiaoming", false, "", "", "x-mse-tag", "gray", "", "", false, uint8(8))
	f.Add("20", "User-Agent", "xiaoming", false, "", "", "x-mse-tag", "gray", "", "", true, uint8(1|8))
	f.Add("30", "", "", false, "", "", "x-mse-tag", "gray", "", "", true, uint8(2|8))
	f.Add("-1", "User-Agent", "xiaoming", false, "", "", "", "", "", "x-mse-tag blue", false, uint8(4|16))
	scripts, general := map[string]string{}, map[string]string{}
	for _, name := range luascripts.IngressProviders() {
		b, err := luascripts.Ingress(name)
		if err != nil {
			f.Fatal(err)
		}
		scripts[name], general[name] = string(b), withoutFastPath(f, string(b))
	}
	f.Fuzz(func(t *testing.T, weight, hName, hValue string, hRegex bool, qName, qValue, setName, setValue, remove, existing string, subset bool, shape uint8) {
		typ := gatewayv1beta1.HeaderMatchExact
		if hRegex {
			typ = gatewayv1beta1.HeaderMatchRegularExpression
		}
		match := rolloutsv1beta1.HttpRouteMatch{Headers: []gatewayv1beta1.HTTPHeaderMatch{{Type: &typ, Name: gatewayv1beta1.HTTPHeaderName(hName), Value: hValue}}}
		if qName != "" {
			match.QueryParams = []gatewayv1beta1.HTTPQueryParamMatch{{Name: gatewayv1beta1.HTTPHeaderName(qName), Value: qValue}}
		}
		if shape&1 != 0 {
			match.Headers[0].Type = nil
		}
		control := "mse.ingress.kubernetes.io/request-header-control-update"
		if shape&16 != 0 {
			control = "higress.io/request-header-control-update"
		}
		annotations := map[string]string{}
		if shape&8 == 0 {
			annotations[control] = existing
		}
		if !utf8.ValidString(existing) {
			// The API server keeps annotations as JSON strings: a stable Ingress's are valid UTF-8.
			t.Skip("annotation values are valid UTF-8")
		}
		if subset {
			annotations["mse.ingress.kubernetes.io/service-subset"] = ""
		}
		in := IngressInput{
			Annotations: annotations,
			Weight:      weight,
			Matches:     []rolloutsv1beta1.HttpRouteMatch{match},
			RequestHeaderModifier: &gatewayv1beta1.HTTPHeaderFilter{
				Set: []gatewayv1beta1.HTTPHeader{{Name: gatewayv1beta1.HTTPHeaderName(setName), Value: setValue}},
			},
		}
		if remove != "" {
			in.RequestHeaderModifier.Remove = strings.Split(remove, ",")
		}
		if shape&2 != 0 {
			in.Matches = nil
		}
		if shape&4 != 0 {
			in.RequestHeaderModifier = nil
		}
		for name, script := range scripts {
			out, err := RunIngressScript(script, in)
			want, wantErr := RunIngressScript(general[name], in)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || !maps.Equal(out, want) {
				t.Errorf("%s: the fast path changes the outcome:\nshipped       %v, %v\nany_step only %v, %v", name, out, err, want, wantErr)
			}
			if err != nil {
				var scriptErr *ScriptError
				if !errors.As(err, &scriptErr) || !strings.HasPrefix(scriptErr.Message(), name+" ingress provider: ") {
					t.Fatalf("%s: not a deliberate refusal: %v", name, err)
				}
				continue
			}
			if out["nginx.ingress.kubernetes.io/canary"] != "true" {
				t.Errorf("%s: canary annotation missing: %v", name, out)
			}
			for k, v := range out {
				if strings.HasPrefix(k, "kruise-lanes.io/") || k == control && v == existing {
					continue
				}
				if strings.ContainsAny(v, "\r\x00") || strings.Contains(v, "\n") && !strings.Contains(k, "request-header-control") {
					t.Errorf("%s: annotation %s carries a control character: %q", name, k, v)
				}
			}
			// A second run on its own output is stable: nothing accumulates from step to step.
			again, err := RunIngressScript(script, IngressInput{Annotations: out, Weight: in.Weight, Matches: in.Matches, RequestHeaderModifier: in.RequestHeaderModifier})
			if err != nil {
				t.Fatalf("%s: second run refused its own output: %v", name, err)
			}
			if len(again) != len(out) {
				t.Errorf("%s: second run changed the annotations:\nfirst  %v\nsecond %v", name, out, again)
			}
			for k, v := range out {
				if again[k] != v {
					t.Errorf("%s: second run changed %s from %q to %q", name, k, v, again[k])
				}
			}
		}
	})
}
