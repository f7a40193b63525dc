package controller

import (
	"k8s.io/apimachinery/pkg/api/equality"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// statusEqual reports whether a status write would change nothing.
func statusEqual(a, b *lanesv1alpha1.LaneAnalysisStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}
