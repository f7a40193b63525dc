//go:build e2e

package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// istiod is Istio's control plane (pilot-discovery built by `make tools` from test/tools/istio),
// started once per suite on first use. It translates the VirtualServices, DestinationRules and
// GAMMA HTTPRoutes of the cluster into xDS for proxyless gRPC clients (the lane demo's hops, whose
// bootstrap the pod runner writes) on a plaintext gRPC port on loopback. No Envoy runs: the data
// plane is grpc-go's xDS client.
type istiod struct {
	once sync.Once
	addr string
	proc *Process
	err  error
}

// IstioNamespace is where istiod keeps its CA secret and reads its mesh configuration.
const IstioNamespace = "istio-system"

// Istiod starts istiod if it is not running yet and returns its plaintext xDS address
// (host:port). It stays up until the suite ends.
func (c *Cluster) Istiod(t testing.TB) string {
	t.Helper()
	addr, err := c.IstiodAddress()
	if err != nil {
		t.Fatalf("starting istiod: %v", err)
	}
	return addr
}

// IstiodAddress is Istiod without a testing.TB.
func (c *Cluster) IstiodAddress() (string, error) {
	c.istio.once.Do(func() {
		c.istio.addr, c.istio.proc, c.istio.err = c.startIstiod(context.Background())
	})
	if c.istio.err != nil {
		return "", c.istio.err
	}
	if !c.istio.proc.Running() {
		return "", fmt.Errorf("istiod exited (log: %s): %w", c.istio.proc.LogPath(), c.istio.proc.ExitErr())
	}
	return c.istio.addr, nil
}

func (c *Cluster) startIstiod(ctx context.Context) (string, *Process, error) {
	if err := CheckTestNetwork(); err != nil {
		return "", nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: IstioNamespace}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", nil, fmt.Errorf("creating namespace %s: %w", IstioNamespace, err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return "", nil, err
	}
	grpcAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	httpAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	proc, err := c.sup.Start(ProcessSpec{
		Name: "istiod",
		Path: filepath.Join(c.ToolsBin, "pilot-discovery"),
		Args: []string{
			"discovery",
			"--kubeconfig=" + c.Kubeconfig,
			"--grpcAddr=" + grpcAddr,
			"--httpAddr=" + httpAddr,
			"--httpsAddr=127.0.0.1:" + strconv.Itoa(ports[2]),
			"--secureGRPCAddr=",
			"--monitoringAddr=127.0.0.1:" + strconv.Itoa(ports[3]),
			"--domain=cluster.local",
			"--log_output_level=default:info",
		},
		Env: []string{
			"POD_NAMESPACE=" + IstioNamespace,
			"POD_NAME=istiod-e2e",
			"REVISION=default",
			// Push changes at once: the default debounce (100 ms, up to 10 s under churn) would
			// only slow the scenarios down.
			"PILOT_DEBOUNCE_AFTER=10ms",
			"PILOT_DEBOUNCE_MAX=200ms",
			"PILOT_ENABLE_GATEWAY_API=true",
			"PILOT_ENABLE_ALPHA_GATEWAY_API=true",
			"PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER=false",
			"PILOT_ENABLE_GATEWAY_API_STATUS=true",
			"VALIDATION_WEBHOOK_CONFIG_NAME=",
			"INJECTION_WEBHOOK_CONFIG_NAME=",
			"ISTIOD_CUSTOM_HOST=istiod.istio-system.svc",
		},
	})
	if err != nil {
		return "", nil, err
	}
	if err := waitHealthy(ctx, http.DefaultClient, "istiod", "http://"+httpAddr+"/ready", 90*time.Second); err != nil {
		return "", proc, fmt.Errorf("%w\n%s", err, proc.Tail(30))
	}
	return grpcAddr, proc, nil
}

// xdsBootstrap is a grpc-go xDS bootstrap for a proxyless client of istiod: a sidecar node of
// the given IP, name and namespace, with extra node metadata on top of what istiod needs.
func (c *Cluster) xdsBootstrap(ip, name, namespace string, metadata map[string]any) ([]byte, error) {
	addr, err := c.IstiodAddress()
	if err != nil {
		return nil, err
	}
	md := map[string]any{
		"GENERATOR": "grpc", "NAMESPACE": namespace, "INSTANCE_IPS": ip, "CLUSTER_ID": "Kubernetes",
		"ISTIO_VERSION": "1.31.0", "MESH_ID": "cluster.local",
	}
	maps.Copy(md, metadata)
	return json.MarshalIndent(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      addr,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{
			"id":       "sidecar~" + ip + "~" + name + "." + namespace + "~" + namespace + ".svc.cluster.local",
			"cluster":  "Kubernetes",
			"locality": map[string]any{},
			"metadata": md,
		},
	}, "", "  ")
}
