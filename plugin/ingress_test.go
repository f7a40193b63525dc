package plugin

import (
	"errors"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIngressInputKeys pins the keys Kruise v0.6.2's converter gives the script's `obj`.
func TestIngressInputKeys(t *testing.T) {
	obj, err := IngressInput{Weight: NoWeight}.ToLuaObject()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"annotations", "canaryService", "matches", "requestHeaderModifier", "weight"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("input keys (-want +got):\n%s", diff)
	}
}

func TestRunIngressScriptRejectsNonTable(t *testing.T) {
	_, err := RunIngressScript(`return "x"`, IngressInput{Weight: NoWeight})
	if err == nil {
		t.Fatal("want an error for a script that returns a string")
	}
}

func TestScriptErrorMessageHasNoTraceback(t *testing.T) {
	_, err := RunIngressScript(`error("mse ingress provider: nope", 0)`, IngressInput{Weight: NoWeight})
	var scriptErr *ScriptError
	if !errors.As(err, &scriptErr) {
		t.Fatalf("error %v is not a ScriptError", err)
	}
	if got := scriptErr.Message(); got != "mse ingress provider: nope" {
		t.Errorf("Message() = %q", got)
	}
}
