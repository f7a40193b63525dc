// Package v1alpha1 holds the Go types of the kruise-lanes.io/v1alpha1 API: LaneAnalysis, which
// judges a whole lane by Prometheus measurements of its own traffic at every hop and approves or
// rolls back all its members together. The CRD YAML and the deepcopy functions are generated from
// these types and their markers (`make generate`); never edit zz_generated.deepcopy.go or
// charts/lanes/crds/ by hand.
//
// +kubebuilder:object:generate=true
// +groupName=kruise-lanes.io
package v1alpha1
