// Module crds pins the CRD-only dependencies the e2e harness installs: Gateway API and Istio.
// Nothing here is compiled; the harness runs `go mod download -json <module>` in this folder and
// reads the YAML from the module cache. Do not run `go mod tidy` (it would drop both requirements).
module github.com/kruise-lanes/kruise-lanes/test/tools/crds

go 1.24.0

require (
	istio.io/api v1.24.2
	sigs.k8s.io/gateway-api v1.6.1
)
