//go:build e2e

// Package lanedemo plays the whole lifecycle of the seed 002 lane (A -> B -> C: the lane-demo
// hops of examples/lane-demo/chain.yaml behind examples/mse's Ingress and lane) on a running
// cluster with Kruise Rollouts and lanes-manager: deploy, release new A and C, approve, release
// again, roll back. At each phase it prints what a user would look at (the lane trace, the
// canary Ingress Kruise wrote, the member states) by running kubectl-lanes exactly as a user
// does, and the answers of real requests: curl through Traefik and a call from inside the mesh
// (StartDataPlanes starts istiod, Traefik and the pod runner). It returns what it printed so a
// test can hold the demo to it.
//
// `make demo` runs it on a fresh local control plane (test/demo); test/e2e/demo_test.go runs it on
// the e2e suite's cluster so it cannot rot.
package lanedemo
