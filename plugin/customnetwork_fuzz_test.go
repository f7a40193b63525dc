package plugin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
)

// fuzzRouteSpec is a stable route with a rule to the stable Service and one to another Service.
const fuzzRouteSpec = `{"parentRefs":[{"name":"public"}],"rules":[
 {"matches":[{"path":{"type":"PathPrefix","value":"/api"}}],"backendRefs":[{"group":"","kind":"Service","name":"demo","port":80,"weight":1}]},
 {"matches":[{"path":{"type":"PathPrefix","value":"/static"}}],"backendRefs":[{"group":"","kind":"Service","name":"cdn","port":80,"weight":1}]}]}`

// FuzzHTTPRouteScript feeds arbitrary weights, match conditions and header edits to the HTTPRoute
// provider. It may refuse only with its own sentence; what it returns must decode as an HTTPRoute
// spec, keep the rule that does not route to the stable Service, and carry no control character
// in a header it writes.
func FuzzHTTPRouteScript(f *testing.F) {
	f.Add(int32(-1), "User-Agent", "xiaoming", false, "", "", "", "x-mse-tag", "gray", "")
	f.Add(int32(30), "", "", false, "", "", "", "x-mse-tag", "gray", "x-debug")
	f.Add(int32(-1), "x-a", ".*", true, "lane", "gray", "/api/v2", "bad name", "v\r\nx: y", "a,b")
	f.Add(int32(150), "x", "y", false, "q", "", "/web", "", "", "")
	script, err := luascripts.CustomNetwork("httproute")
	if err != nil {
		f.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal([]byte(fuzzRouteSpec), &spec); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, weight int32, hName, hValue string, hRegex bool, qName, qValue, path, setName, setValue, remove string) {
		typ := gatewayv1beta1.HeaderMatchExact
		if hRegex {
			typ = gatewayv1beta1.HeaderMatchRegularExpression
		}
		var matches []rolloutsv1beta1.HttpRouteMatch
		if hName != "" || qName != "" || path != "" {
			m := rolloutsv1beta1.HttpRouteMatch{}
			if hName != "" {
				m.Headers = []gatewayv1beta1.HTTPHeaderMatch{{Type: &typ, Name: gatewayv1beta1.HTTPHeaderName(hName), Value: hValue}}
			}
			if qName != "" {
				m.QueryParams = []gatewayv1beta1.HTTPQueryParamMatch{{Name: gatewayv1beta1.HTTPHeaderName(qName), Value: qValue}}
			}
			if path != "" {
				m.Path = &gatewayv1beta1.HTTPPathMatch{Value: &path}
			}
			matches = append(matches, m)
		}
		in := CustomNetworkInput{
			Data:          CustomNetworkData{Spec: spec},
			CanaryWeight:  weight,
			StableWeight:  100 - weight,
			Matches:       matches,
			CanaryService: "demo-canary",
			StableService: "demo",
			RequestHeaderModifier: &gatewayv1beta1.HTTPHeaderFilter{
				Set:    []gatewayv1beta1.HTTPHeader{{Name: gatewayv1beta1.HTTPHeaderName(setName), Value: setValue}},
				Remove: strings.Split(remove, ","),
			},
		}
		out, err := RunCustomNetworkScript(string(script), in)
		if err != nil {
			var scriptErr *ScriptError
			if !errors.As(err, &scriptErr) || !strings.HasPrefix(scriptErr.Message(), "httproute provider: ") {
				t.Fatalf("not a deliberate refusal: %v", err)
			}
			return
		}
		encoded, err := json.Marshal(out.Spec)
		if err != nil {
			t.Fatal(err)
		}
		var route gatewayv1beta1.HTTPRouteSpec
		if err := json.Unmarshal(encoded, &route); err != nil {
			t.Fatalf("result is not an HTTPRoute spec: %v\n%s", err, encoded)
		}
		if len(route.Rules) < 2 || len(route.Rules) > 16 || route.Rules[1].BackendRefs[0].Name != "cdn" || route.Rules[1].BackendRefs[0].Filters != nil {
			t.Fatalf("rules changed beyond the stable rule: %s", encoded)
		}
		check := func(filters []gatewayv1beta1.HTTPRouteFilter) {
			for _, f := range filters {
				if f.RequestHeaderModifier == nil {
					continue
				}
				for _, h := range append(f.RequestHeaderModifier.Set, f.RequestHeaderModifier.Add...) {
					if strings.ContainsAny(string(h.Name)+h.Value, "\r\n\x00") {
						t.Errorf("header %q: %q carries a control character", h.Name, h.Value)
					}
				}
			}
		}
		for _, r := range route.Rules {
			check(r.Filters)
			for _, b := range r.BackendRefs {
				check(b.Filters)
			}
		}
	})
}
