package luascripts

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the generated provider scripts")

// assembleIngress builds the standalone script of an ingress provider from lib/canary.lua, read
// from dir: the blocks of the other providers resolved away, each `--#embed NAME file` line
// replaced by `local NAME=<file, resolved and minified, as a long string>`, then minified (see
// minify_test.go). Kruise runs each script on its own, so every provider file carries the whole
// body.
func assembleIngress(dir, name string) ([]byte, error) {
	lib := filepath.Join(dir, "trafficrouting_ingress", "lib")
	src, err := resolveFile(filepath.Join(lib, "canary.lua"), name)
	if err != nil {
		return nil, err
	}
	src, err = embedChunks(src, func(file string) ([]byte, error) {
		chunk, err := resolveFile(filepath.Join(lib, file), name)
		if err != nil {
			return nil, err
		}
		out, err := minify(chunk, nil)
		if err != nil {
			return nil, fmt.Errorf("lib/%s for %s: %w", file, name, err)
		}
		return out, nil
	})
	if err != nil {
		return nil, fmt.Errorf("lib/canary.lua for %s: %w", name, err)
	}
	// The default lane header line stays on a line of its own for WithDefaultLaneHeader, in the
	// providers that read it (TestWithDefaultLaneHeader checks that the others never name it).
	var keep []byte
	if bytes.Contains(src, defaultLaneHeaderLine) {
		keep = defaultLaneHeaderLine
	}
	out, err := minify(src, keep)
	if err != nil {
		return nil, fmt.Errorf("lib/canary.lua for %s: %w", name, err)
	}
	header := fmt.Sprintf("-- Kruise Lanes %s ingress provider (lua.traffic.routing.ingress.%s), generated from lib/ by `make generate`.\n", name, name)
	return append([]byte(header), out...), nil
}

// resolveFile reads a lib/ file and keeps what belongs to provider.
func resolveFile(path, provider string) ([]byte, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read provider source: %w", err)
	}
	out, err := resolve(src, provider)
	if err != nil {
		return nil, fmt.Errorf("%s for %s: %w", filepath.Base(path), provider, err)
	}
	return out, nil
}

func TestProviderScriptsAreGenerated(t *testing.T) {
	for _, name := range IngressProviders() {
		t.Run(name, func(t *testing.T) {
			want, err := assembleIngress(".", name)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("trafficrouting_ingress", name+".lua")
			if *update {
				if err := os.WriteFile(file, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Ingress(name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s is out of date with lib/ (run make generate) (-want +got):\n%s", file, diff)
			}
		})
	}
}

func TestScriptsKeys(t *testing.T) {
	scripts, err := Scripts()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"lua.traffic.routing.ingress.mse", "lua.traffic.routing.ingress.higress", "lua.traffic.routing.HTTPRoute.gateway.networking.k8s.io"} {
		if scripts[key] == "" {
			t.Errorf("Scripts() has no %s", key)
		}
	}
	if _, err := Ingress("nginx"); err == nil {
		t.Error("Ingress(nginx) = nil error, want an error: we ship no nginx provider")
	}
	if _, err := CustomNetwork("grpcroute"); err == nil {
		t.Error("CustomNetwork(grpcroute) = nil error, want an error: we ship no grpcroute provider")
	}
	if len(scripts) != len(ProviderNames()) {
		t.Errorf("Scripts() has %d keys, want one per provider %v", len(scripts), ProviderNames())
	}
}
