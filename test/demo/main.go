//go:build e2e

// Command demo is `make demo`: the seed 002 lane's whole lifecycle on a local real control plane,
// with real requests. It re-executes itself in a network namespace of its own (the e2e harness's
// test network), starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and the
// Kruise Rollouts v0.6.2 manager (test/e2e/framework), then lanes-manager, istiod, Traefik and the
// pod runner, and plays lanedemo on them. Every process it started is stopped when it ends, fails
// or is interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kruise-lanes/kruise-lanes/test/demo/lanedemo"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// namespace is where the demo deploys the example.
const namespace = "lanes-demo"

func main() {
	// The demo's requests stay inside a network namespace of its own (the e2e harness's test
	// network): the program re-executes itself there first.
	code, reexecuted, err := framework.RunInTestNetwork()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
	if reexecuted {
		os.Exit(code)
	}
	os.Exit(run(os.Stdout, os.Stderr))
}

// run returns the exit code: 0 when the demo ran to the end, 1 when it failed, 130 when it was
// interrupted.
func run(out, errOut io.Writer) int {
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(errOut, "\n%v: stopping every process the demo started (again to exit at once)\n", s)
			cancel()
		case <-ctx.Done():
			return
		}
		// A second signal exits now; the children die with this process (parent-death signal).
		if s, ok := <-sigs; ok {
			fmt.Fprintf(errOut, "%v: exiting\n", s)
			os.Exit(130)
		}
	}()

	err := play(ctx, out)
	elapsed := time.Since(start).Round(100 * time.Millisecond)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(errOut, "demo interrupted after %s; every process it started is stopped\n", elapsed)
		return 130
	case err != nil:
		fmt.Fprintf(errOut, "demo failed after %s: %v\n", elapsed, err)
		return 1
	}
	fmt.Fprintf(out, "\nDone in %s; every process the demo started is stopped.\n", elapsed)
	return 0
}

// play starts the cluster and lanes-manager, runs the lifecycle and stops everything again.
func play(ctx context.Context, out io.Writer) (err error) {
	fmt.Fprintln(out, "Kruise Lanes demo: an end-to-end canary lane through A -> B -> C (shared/seeds 002),")
	fmt.Fprintln(out, "on a local real control plane with real requests: kwok plays the nodes, and every Ready pod")
	fmt.Fprintln(out, "runs a real lane-demo server on its own IP, inside a network namespace only this demo uses.")

	lanedemo.Phase(out, "Start the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) and Kruise Rollouts v0.6.2")
	t0 := time.Now()
	cluster, err := framework.Start(ctx, framework.Options{IstioCRDs: true, GatewayAPICRDs: true})
	if err != nil {
		return err
	}
	defer func() {
		keepLogs := err != nil && ctx.Err() == nil
		if stopErr := cluster.Stop(keepLogs); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the control plane: %w", stopErr))
		}
	}()
	fmt.Fprintf(out, "  ready in %s (component logs in %s while it runs)\n", time.Since(t0).Round(100*time.Millisecond), cluster.LogDir())

	lanedemo.Phase(out, "Start lanes-manager (lane-label webhook, label reconciler, provider installer, mesh routes)")
	t0 = time.Now()
	certDir := filepath.Join(filepath.Dir(cluster.LogDir()), "lanes-webhook-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return fmt.Errorf("creating the certificate folder: %w", err)
	}
	manager, err := cluster.LaunchLanesManager(ctx, certDir, "--mesh-routes=true")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, manager.Close()) }()
	fmt.Fprintf(out, "  ready in %s, webhook on https://localhost:%d\n", time.Since(t0).Round(100*time.Millisecond), manager.WebhookPort)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := cluster.Client.Create(ctx, ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}

	lanedemo.Phase(out, "Start the data planes: istiod (east-west, for proxyless gRPC hops) and Traefik (the gateway, reading Ingresses of class mse)")
	t0 = time.Now()
	probes, stop, err := lanedemo.StartDataPlanes(ctx, cluster, namespace, out)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(out, "  ready in %s\n", time.Since(t0).Round(100*time.Millisecond))

	_, err = lanedemo.Run(ctx, lanedemo.Config{
		Client:      cluster.Client,
		Kubeconfig:  cluster.Kubeconfig,
		Namespace:   namespace,
		ExamplesDir: filepath.Join(cluster.RepoRoot, "examples", "mse"),
		AppFile:     filepath.Join(cluster.RepoRoot, "examples", "lane-demo", "chain.yaml"),
		Mesh:        "istio",
		Probes:      probes,
		Out:         out,
	})
	return err
}
