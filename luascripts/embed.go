// Package luascripts holds the Lua traffic-routing providers that Kruise Rollouts runs on our
// behalf. The scripts are data: each lives beside a testdata/ folder of golden cases, and the
// whole tree is embedded so the manager, the CLI and the tests read the same bytes.
package luascripts

import (
	"embed"
	"fmt"
	"io/fs"
)

// FS is the embedded script tree, rooted at this folder (e.g. "trafficrouting_ingress/mse.lua").
//
//go:embed trafficrouting_ingress/*.lua trafficrouting_customnetwork/*.lua
var FS embed.FS

// Ingress returns the ingress provider script for an ingress class type such as "mse".
func Ingress(classType string) ([]byte, error) {
	b, err := fs.ReadFile(FS, "trafficrouting_ingress/"+classType+".lua")
	if err != nil {
		return nil, fmt.Errorf("no ingress provider for class type %q: %w", classType, err)
	}
	return b, nil
}
