//go:build e2e

// Package e2e proves Kruise Lanes against a real API server and the real OpenKruise Rollouts
// v0.6.2 controller. It is built only with -tags e2e; run it with `make e2e`, which builds the
// control plane into .cache/bin first. One control plane serves every scenario of the run, each in
// its own namespace.
package e2e

import (
	"os"
	"testing"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// cluster is the shared control plane, set once by TestMain before any test runs and read-only
// afterwards.
var cluster *framework.Cluster

func TestMain(m *testing.M) {
	opts := framework.Options{GatewayAPICRDs: true, IstioCRDs: true, KruiseApps: true, LanesCRDs: true}
	os.Exit(framework.Main(m, opts, func(c *framework.Cluster) { cluster = c }))
}
