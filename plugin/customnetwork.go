package plugin

import (
	"encoding/json"
	"fmt"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"github.com/openkruise/rollouts/pkg/util/luamanager"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// OriginalSpecAnnotation is where Kruise keeps a custom network object's original spec, labels
// and annotations (as CustomNetworkData JSON) while a release runs, and restores them from.
const OriginalSpecAnnotation = "rollouts.kruise.io/original-spec-configuration"

// CustomNetworkData is the part of a custom network object a script reads and returns. It has
// the JSON shape of Kruise v0.6.2's own type: the annotation above holds it, the script's `obj.data`
// is it, and the script's result is decoded into it.
type CustomNetworkData struct {
	Spec        any               `json:"spec,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// CustomNetworkInput is the object a custom network script receives as the global `obj`. It
// mirrors the struct Kruise v0.6.2 builds in its custom network provider field for field; as for
// IngressInput, Kruise gives the fields no JSON tags and its converter lowers their first letter,
// so the keys are pinned here with explicit tags.
type CustomNetworkInput struct {
	// Data is the object's original spec, labels and annotations (never the current ones).
	Data CustomNetworkData `json:"data"`
	// CanaryWeight is the step's weight in percent; -1 when the step sets none.
	CanaryWeight int32 `json:"canaryWeight"`
	// StableWeight is 100 - CanaryWeight (101 when the step sets no weight).
	StableWeight int32 `json:"stableWeight"`
	// Matches are the step's request matches (an OR of ANDed conditions).
	Matches []rolloutsv1beta1.HttpRouteMatch `json:"matches"`
	// CanaryService and StableService are the Services' names; equal for a shared TrafficRouting.
	CanaryService string `json:"canaryService"`
	StableService string `json:"stableService"`
	// RequestHeaderModifier is the step's header injection, if any.
	RequestHeaderModifier *gatewayv1beta1.HTTPHeaderFilter `json:"requestHeaderModifier"`
}

// NoCanaryWeight is the canary weight Kruise passes when a step sets no traffic percentage.
const NoCanaryWeight int32 = -1

// ToLuaObject converts the input the way Kruise does before handing it to the script.
func (in CustomNetworkInput) ToLuaObject() (map[string]any, error) {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&in)
	if err != nil {
		return nil, fmt.Errorf("convert custom network script input: %w", err)
	}
	return obj, nil
}

// RunCustomNetworkScript runs a custom network script on one input exactly as Kruise's custom
// network provider does and returns the spec, labels and annotations the script produced.
func RunCustomNetworkScript(script string, in CustomNetworkInput) (CustomNetworkData, error) {
	obj, err := in.ToLuaObject()
	if err != nil {
		return CustomNetworkData{}, err
	}
	manager := &luamanager.LuaManager{}
	state, err := manager.RunLuaScript(&unstructured.Unstructured{Object: obj}, script)
	if err != nil {
		return CustomNetworkData{}, &ScriptError{Err: err}
	}
	result := state.Get(-1)
	if result.Type() != lua.LTTable {
		return CustomNetworkData{}, &ScriptError{Err: fmt.Errorf("expect table output from Lua script, not %s", result.Type())}
	}
	encoded, err := luamanager.Encode(result)
	if err != nil {
		return CustomNetworkData{}, &ScriptError{Err: fmt.Errorf("encode script result: %w", err)}
	}
	var out CustomNetworkData
	if err := json.Unmarshal(encoded, &out); err != nil {
		return CustomNetworkData{}, &ScriptError{Err: fmt.Errorf("script result is not {spec, labels, annotations}: %w", err)}
	}
	return out, nil
}
