package luascripts

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the generated provider scripts")

func TestProviderScriptsAreGenerated(t *testing.T) {
	for _, name := range IngressProviders() {
		t.Run(name, func(t *testing.T) {
			want, err := AssembleIngress(".", name)
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
	for _, key := range []string{"lua.traffic.routing.ingress.mse", "lua.traffic.routing.ingress.higress"} {
		if scripts[key] == "" {
			t.Errorf("Scripts() has no %s", key)
		}
	}
	if _, err := Ingress("nginx"); err == nil {
		t.Error("Ingress(nginx) = nil error, want an error: we ship no nginx provider")
	}
}
