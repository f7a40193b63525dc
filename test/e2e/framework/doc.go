//go:build e2e

// Package framework runs a real, throw-away control plane on loopback for the end-to-end suite:
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from the pinned tool modules
// under test/tools, kwok with one fake Node so pods become Running and Ready without a kubelet, and
// the OpenKruise Rollouts manager with its webhooks, CRDs and Lua scripts.
//
// A test binary starts one Cluster in TestMain through Main and shares it across scenarios, each in
// its own namespace; a program that is not a test (the demo) starts one through Start. Every
// process is started through a Supervisor, which stops it when the suite ends, fails, panics or is
// interrupted. When a scenario fails, the objects under test and the tail of every component log
// are written to the test log and to test/e2e/artifacts.
package framework
