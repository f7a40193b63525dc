package analysis

import (
	"os"
	"testing"

	"sigs.k8s.io/yaml"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// The seed 002 example's LaneAnalysis decodes strictly and every template of it renders.
func TestExampleAnalysisIsValid(t *testing.T) {
	data, err := os.ReadFile("../examples/mse/analysis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	la := &lanesv1alpha1.LaneAnalysis{}
	if err := yaml.UnmarshalStrict(data, la); err != nil {
		t.Fatalf("examples/mse/analysis.yaml: %v", err)
	}
	if err := Validate(&la.Spec); err != nil {
		t.Errorf("examples/mse/analysis.yaml: %v", err)
	}
	if la.Spec.Lane != "mse-traffic" || len(la.Spec.Metrics) != 2 {
		t.Errorf("lane %q with %d metrics, want the seed 002 lane mse-traffic with its 2 metrics", la.Spec.Lane, len(la.Spec.Metrics))
	}
}
