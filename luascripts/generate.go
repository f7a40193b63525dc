package luascripts

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ingressProviders are the ingress class types whose scripts are assembled from lib/.
var ingressProviders = []string{"higress", "mse"}

// AssembleIngress builds the standalone script of an ingress provider from the shared body
// (lib/canary.lua) and the provider's profile (lib/<name>.profile.lua), read from dir. Kruise runs
// each script on its own, so every provider file carries the whole body.
func AssembleIngress(dir, name string) ([]byte, error) {
	profile, err := os.ReadFile(filepath.Join(dir, "trafficrouting_ingress", "lib", name+".profile.lua"))
	if err != nil {
		return nil, fmt.Errorf("read profile of %s: %w", name, err)
	}
	body, err := os.ReadFile(filepath.Join(dir, "trafficrouting_ingress", "lib", "canary.lua"))
	if err != nil {
		return nil, fmt.Errorf("read shared body: %w", err)
	}
	header := fmt.Sprintf("-- Kruise Lanes %s ingress provider for Kruise Rollouts (lua.traffic.routing.ingress.%s).\n"+
		"-- Generated from lib/%s.profile.lua and lib/canary.lua by `make generate`; do not edit.\n", name, name, name)
	out := append([]byte(header), profile...)
	out = append(out, '\n')
	return append(out, body...), nil
}

// IngressProviders lists the ingress class types this project ships a script for.
func IngressProviders() []string {
	return append([]string(nil), ingressProviders...)
}

// Scripts returns every embedded ingress provider script keyed by the key Kruise reads it from
// in its ConfigMap (lua.traffic.routing.ingress.<classType>).
func Scripts() (map[string]string, error) {
	out := map[string]string{}
	for _, name := range ingressProviders {
		b, err := fs.ReadFile(FS, "trafficrouting_ingress/"+name+".lua")
		if err != nil {
			return nil, fmt.Errorf("read embedded %s script: %w", name, err)
		}
		out["lua.traffic.routing.ingress."+name] = string(b)
	}
	return out, nil
}
