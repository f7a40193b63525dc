//go:build e2e

// Package bench measures Kruise Lanes' controllers end to end: the real lanes-manager binary
// against a real API server, observed only through watches and its metrics endpoint, so the
// figures hold whatever the controllers look like inside. It is built only with -tags e2e and has
// its own control plane (Kruise Rollouts' CRDs, Istio's and Gateway API's, no Kruise manager);
// run it with `make bench-routes`.
package bench

import (
	"os"
	"testing"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// cluster is the control plane, set once by TestMain before any benchmark runs.
var cluster *framework.Cluster

func TestMain(m *testing.M) {
	opts := framework.Options{IstioCRDs: true, GatewayAPICRDs: true, WithoutKruise: true}
	os.Exit(framework.Main(m, opts, func(c *framework.Cluster) { cluster = c }))
}
