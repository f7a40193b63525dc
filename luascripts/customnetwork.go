package luascripts

import (
	"fmt"
	"io/fs"
)

// CustomNetworkProvider is a script Kruise runs for an object of one kind named in a Rollout's
// trafficRoutings[].customNetworkRefs.
type CustomNetworkProvider struct {
	// Name is what --providers calls it (e.g. "httproute").
	Name string
	// Group and Kind are those of the objects it programs.
	Group string
	Kind  string
}

// Key is the key Kruise reads the script from in its ConfigMap (CustomNetworkKey).
func (p CustomNetworkProvider) Key() string {
	return CustomNetworkKey(p.Kind, p.Group)
}

// path is where the script lives in FS.
func (p CustomNetworkProvider) path() string {
	return "trafficrouting_customnetwork/" + p.Name + ".lua"
}

// CustomNetworkProviders lists the custom network providers this project ships a script for.
func CustomNetworkProviders() []CustomNetworkProvider {
	return []CustomNetworkProvider{{Name: "httproute", Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}}
}

// CustomNetworkProviderNamed returns the custom network provider called name.
func CustomNetworkProviderNamed(name string) (CustomNetworkProvider, bool) {
	for _, p := range CustomNetworkProviders() {
		if p.Name == name {
			return p, true
		}
	}
	return CustomNetworkProvider{}, false
}

// CustomNetwork returns the script of the custom network provider called name (e.g. "httproute").
func CustomNetwork(name string) ([]byte, error) {
	p, ok := CustomNetworkProviderNamed(name)
	if !ok {
		return nil, fmt.Errorf("no custom network provider %q", name)
	}
	b, err := fs.ReadFile(FS, p.path())
	if err != nil {
		return nil, fmt.Errorf("read embedded %s script: %w", name, err)
	}
	return b, nil
}

// ProviderNames lists every provider name --providers accepts: the ingress class types, then the
// custom network providers.
func ProviderNames() []string {
	names := IngressProviders()
	for _, p := range CustomNetworkProviders() {
		names = append(names, p.Name)
	}
	return names
}
