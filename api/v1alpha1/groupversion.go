package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the API group and version of the types in this package.
var GroupVersion = schema.GroupVersion{Group: "kruise-lanes.io", Version: "v1alpha1"}

// AddToScheme adds the types of this group version to a scheme.
func AddToScheme(s *runtime.Scheme) error {
	b := &scheme.Builder{GroupVersion: GroupVersion}
	b.Register(&LaneAnalysis{}, &LaneAnalysisList{})
	return b.AddToScheme(s)
}
