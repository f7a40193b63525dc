package plugin

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
)

// defaultHTTPRouteSpec applies the defaults the Gateway API HTTPRoute schema gives a stored route
// (parentRef group and kind; a rule's match; a match's path; header and query parameter match
// types; backendRef group, kind and weight) to a decoded spec, in place.
func defaultHTTPRouteSpec(spec map[string]any) {
	set := func(m map[string]any, k string, v any) {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	each := func(v any, f func(map[string]any)) {
		items, _ := v.([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				f(m)
			}
		}
	}
	each(spec["parentRefs"], func(p map[string]any) {
		set(p, "group", "gateway.networking.k8s.io")
		set(p, "kind", "Gateway")
	})
	each(spec["rules"], func(r map[string]any) {
		set(r, "matches", []any{map[string]any{}})
		each(r["matches"], func(m map[string]any) {
			set(m, "path", map[string]any{})
			path := m["path"].(map[string]any)
			set(path, "type", "PathPrefix")
			set(path, "value", "/")
			each(m["headers"], func(h map[string]any) { set(h, "type", "Exact") })
			each(m["queryParams"], func(q map[string]any) { set(q, "type", "Exact") })
		})
		each(r["backendRefs"], func(b map[string]any) {
			set(b, "group", "")
			set(b, "kind", "Service")
			set(b, "weight", float64(1))
		})
	})
}

// nulls lists the paths of null values and empty lists or objects in a decoded value: the API
// server drops or keeps them differently from how Kruise compares them.
func nulls(path string, v any) []string {
	switch x := v.(type) {
	case nil:
		return []string{path}
	case map[string]any:
		if len(x) == 0 {
			return []string{path}
		}
		var out []string
		for k, e := range x {
			out = append(out, nulls(path+"."+k, e)...)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []string{path}
		}
		var out []string
		for i, e := range x {
			out = append(out, nulls(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
		return out
	}
	return nil
}

// TestHTTPRouteScriptConverges: Kruise writes the route again on every reconcile while the spec
// the script returns differs from the stored one, and the step never completes. For every golden
// case, starting from the route as the API server stores it (defaults applied), each step's spec
// must already be what the API server would store: applying the defaults changes nothing and no
// null or empty value is left for the server to drop.
func TestHTTPRouteScriptConverges(t *testing.T) {
	for provider, cases := range loadCustomNetworkCases(t) {
		script := customNetworkScript(t, provider)
		for _, nc := range cases {
			if nc.Case.ExpectedError != nil {
				continue
			}
			t.Run(nc.Path, func(t *testing.T) {
				c := nc.Case
				original := runtime.DeepCopyJSON(c.Original)
				spec, _ := original["spec"].(map[string]any)
				defaultHTTPRouteSpec(spec)
				c.Original = original
				got, _, _, err := c.Run(script)
				if err != nil {
					t.Fatalf("on the stored route: %s", ErrorMessage(err))
				}
				for _, s := range got {
					if s.Restored {
						continue
					}
					stored := runtime.DeepCopyJSON(s.Spec)
					defaultHTTPRouteSpec(stored)
					if diff := cmp.Diff(stored, s.Spec); diff != "" {
						t.Errorf("step %d: the API server would store another spec, so Kruise would never finish the step (-stored +script):\n%s", s.Step, diff)
					}
					if n := nulls("spec", s.Spec); len(n) > 0 {
						t.Errorf("step %d: null or empty values at %v", s.Step, n)
					}
				}
			})
		}
	}
}
