package plugin

import (
	"encoding/json"
	"errors"
	"fmt"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"github.com/openkruise/rollouts/pkg/util/luamanager"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// IngressInput is the object an ingress provider script receives as the global `obj`. It mirrors
// the struct Kruise v0.6.2 builds in its ingress controller field for field. Kruise gives its
// fields no JSON tags; the unstructured converter of its apimachinery (v0.26) then names them
// after the Go fields with a lower first letter. Newer converters keep the Go names as they are,
// so the keys the scripts read are pinned here with explicit tags.
type IngressInput struct {
	// Annotations are the canary Ingress's current annotations.
	Annotations map[string]string `json:"annotations"`
	// Weight is the canary weight in percent as a string; "-1" means the step sets no weight.
	Weight string `json:"weight"`
	// Matches are the step's request matches (an OR of ANDed conditions).
	Matches []rolloutsv1beta1.HttpRouteMatch `json:"matches"`
	// CanaryService is the Service the canary Ingress routes to.
	CanaryService string `json:"canaryService"`
	// RequestHeaderModifier is the step's header injection, if any.
	RequestHeaderModifier *gatewayv1beta1.HTTPHeaderFilter `json:"requestHeaderModifier"`
}

// NoWeight is the weight string Kruise passes when a step sets no traffic percentage.
const NoWeight = "-1"

// ToLuaObject converts the input the way Kruise does before handing it to the script.
func (in IngressInput) ToLuaObject() (map[string]any, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&in)
	if err != nil {
		return nil, fmt.Errorf("convert ingress script input: %w", err)
	}
	return obj, nil
}

// RunIngressScript runs an ingress provider script on one input exactly as Kruise's ingress
// controller does and returns the annotation map the script produced.
func RunIngressScript(script string, in IngressInput) (map[string]string, error) {
	obj, err := in.ToLuaObject()
	if err != nil {
		return nil, err
	}
	manager := &luamanager.LuaManager{}
	state, err := manager.RunLuaScript(&unstructured.Unstructured{Object: obj}, script)
	if err != nil {
		return nil, &ScriptError{Err: err}
	}
	result := state.Get(-1)
	if result.Type() != lua.LTTable {
		return nil, &ScriptError{Err: fmt.Errorf("expect table output from Lua script, not %s", result.Type())}
	}
	encoded, err := luamanager.Encode(result)
	if err != nil {
		return nil, &ScriptError{Err: fmt.Errorf("encode script result: %w", err)}
	}
	annotations := map[string]string{}
	if err := json.Unmarshal(encoded, &annotations); err != nil {
		return nil, &ScriptError{Err: fmt.Errorf("script result is not a map of strings: %w", err)}
	}
	return annotations, nil
}

// ScriptError is a failure inside the Lua script (a deliberate error(...) or a runtime fault),
// as opposed to a failure to prepare its input.
type ScriptError struct {
	Err error
}

func (e *ScriptError) Error() string { return e.Err.Error() }

func (e *ScriptError) Unwrap() error { return e.Err }

// Message returns the script's own error message without gopher-lua's stack traceback.
func (e *ScriptError) Message() string {
	var apiErr *lua.ApiError
	if errors.As(e.Err, &apiErr) && apiErr.Object != nil {
		return apiErr.Object.String()
	}
	return e.Err.Error()
}
