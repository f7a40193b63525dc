package luascripts

import "strings"

// Kruise Rollouts v0.6.2 looks a provider script up in its kruise-rollout-configuration ConfigMap
// under a key it builds from what the script routes: "lua.traffic.routing.ingress.<classType>"
// for an ingress class type, "lua.traffic.routing.<Kind>.<group>" for a custom network object.
// These are the only places Kruise Lanes builds or reads those keys.
const (
	// ingressKeyPrefix starts the key of every ingress provider script.
	ingressKeyPrefix = "lua.traffic.routing.ingress."
	// customNetworkKeyPrefix starts the key of every custom network provider script.
	customNetworkKeyPrefix = "lua.traffic.routing."
)

// IngressKey is the ConfigMap key of the script for an ingress class type (e.g. "mse").
func IngressKey(classType string) string { return ingressKeyPrefix + classType }

// IngressClassOfKey is the ingress class type an ingress provider key names; false for a key of
// another kind.
func IngressClassOfKey(key string) (string, bool) {
	class, ok := strings.CutPrefix(key, ingressKeyPrefix)
	if !ok || class == "" {
		return "", false
	}
	return class, true
}

// CustomNetworkKey is the ConfigMap key of the script for custom network objects of a kind and
// group (e.g. HTTPRoute, gateway.networking.k8s.io). Kruise derives it from the object itself, so
// it cannot carry a prefix.
func CustomNetworkKey(kind, group string) string { return customNetworkKeyPrefix + kind + "." + group }
