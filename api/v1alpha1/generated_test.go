package v1alpha1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kruise-lanes/kruise-lanes/test/toolbin"
)

// generated are the files controller-gen writes from this package, by the folder of the temporary
// output they are compared from and their path in the repository.
var generated = map[string]string{
	"obj/zz_generated.deepcopy.go":           "api/v1alpha1/zz_generated.deepcopy.go",
	"crds/kruise-lanes.io_laneanalyses.yaml": "charts/lanes/crds/kruise-lanes.io_laneanalyses.yaml",
}

// controllerGen returns the controller-gen binary that `make tools` (or `make generate`) builds,
// skipping when it is absent unless LANES_REQUIRE_TOOLS is set (`make chart-test`).
func controllerGen(t *testing.T) string {
	return toolbin.Path(t, "controller-gen", "LANES_REQUIRE_TOOLS")
}

// TestGeneratedFilesAreCurrent regenerates the deepcopy functions and the CRD into a temporary
// folder, with the Makefile's arguments, and fails when the committed files differ: run
// `make generate` after changing the types or their markers.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	bin := controllerGen(t)
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin, "object", "crd", "paths=./api/...",
		"output:crd:artifacts:config="+filepath.Join(out, "crds"), "output:object:dir="+filepath.Join(out, "obj"))
	cmd.Dir = "../.."
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, msg)
	}
	for fresh, committed := range generated {
		want, err := os.ReadFile(filepath.Join(out, fresh))
		if err != nil {
			t.Fatalf("controller-gen wrote no %s: %v", fresh, err)
		}
		got, err := os.ReadFile(filepath.Join("..", "..", committed))
		if err != nil {
			t.Fatalf("%s is missing: run `make generate`: %v", committed, err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s is stale: run `make generate` (-generated +committed):\n%s", committed, diff)
		}
	}
}
