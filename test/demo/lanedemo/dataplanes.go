//go:build e2e

package lanedemo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// StartDataPlanes starts istiod, Traefik for the namespace and the pod runner (which runs
// a lane-demo server for every Ready pod), and returns the requests the demo prints at each
// phase: curl through Traefik as a user would, and a call from inside the mesh.
func StartDataPlanes(ctx context.Context, cluster *framework.Cluster, namespace string, out io.Writer) ([]Probe, func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if _, err := cluster.IstiodAddress(); err != nil {
		return nil, stop, err
	}
	ic := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "mse"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	if err := cluster.Client.Create(ctx, ic); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, stop, fmt.Errorf("creating IngressClass mse: %w", err)
	}
	gw, err := cluster.LaunchTraefik(ctx, framework.TraefikOptions{Namespace: namespace, IngressClass: "mse"})
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() { _ = gw.Stop(5 * time.Second) })
	runner, err := cluster.LaunchPodRunner(namespace, func(err error) { fmt.Fprintf(out, "  pod runner: %v\n", err) })
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, runner.Close)
	target := fmt.Sprintf("xds:///spring-cloud-a.%s.svc.cluster.local:20002", namespace)
	mesh, closeMesh, err := cluster.NewMeshSender(target, map[string]string{"x-mse-tag": "gray"})
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() { _ = closeMesh() })
	fmt.Fprintf(out, "  Traefik's entry point: %s (inside the demo's own network namespace)\n", gw.URL)
	fmt.Fprintln(out, "  Traefik sends a request to A's Service as a whole and reads no MSE key, so through it A's pod")
	fmt.Fprintln(out, "  is not picked by lane, and User-Agent: xiaoming alone gets no x-mse-tag (the MSE gateway does")
	fmt.Fprintln(out, "  both); a request that carries x-mse-tag keeps the lane from B on. From inside the mesh, every")
	fmt.Fprintln(out, "  hop follows the lane.")
	curl := func(header string) Probe {
		headers, flag := map[string]string{}, ""
		if k, v, ok := strings.Cut(header, ": "); ok {
			headers[k], flag = v, " -H '"+header+"'"
		}
		return Probe{Command: "curl" + flag + " " + gw.URL + "/", Send: framework.HTTPSender(gw.URL+"/", "", headers), Times: 2}
	}
	return []Probe{
		curl(""),
		curl("User-Agent: xiaoming"),
		curl("x-mse-tag: gray"),
		{Command: "grpc call from inside the mesh: " + target + " with x-mse-tag: gray (proxyless gRPC, routed by istiod)", Send: mesh, Times: 1, Exact: true},
	}, stop, nil
}
