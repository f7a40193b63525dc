package luascripts

import (
	"fmt"
	"io/fs"
)

// IngressProviders lists the ingress class types this project ships a script for.
func IngressProviders() []string {
	return []string{"higress", "mse"}
}

// Scripts returns every embedded provider script keyed by the key Kruise reads it from in its
// ConfigMap (IngressKey for the ingress providers, CustomNetworkKey for the custom network
// providers).
func Scripts() (map[string]string, error) {
	out := map[string]string{}
	for _, name := range IngressProviders() {
		b, err := fs.ReadFile(FS, "trafficrouting_ingress/"+name+".lua")
		if err != nil {
			return nil, fmt.Errorf("read embedded %s script: %w", name, err)
		}
		out[IngressKey(name)] = string(b)
	}
	for _, p := range CustomNetworkProviders() {
		b, err := CustomNetwork(p.Name)
		if err != nil {
			return nil, err
		}
		out[p.Key()] = string(b)
	}
	return out, nil
}
