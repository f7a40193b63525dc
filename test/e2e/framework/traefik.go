//go:build e2e

package framework

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Traefik is a Traefik v3 entry gateway (built by `make tools` from test/tools/traefik) serving
// one namespace, on a loopback port of the test network. Its ingress-nginx provider reads the
// Ingresses of an IngressClass (canary annotations included); its Gateway API provider serves the
// Gateways of GatewayClass TraefikGatewayClass whose listener port is Port.
type Traefik struct {
	*Process
	// URL is the entry point, http://127.0.0.1:Port.
	URL string
	// Port is the entry point's port; a Gateway listener must use it.
	Port int
}

// TraefikGatewayController is the controllerName of the GatewayClass Traefik serves.
const TraefikGatewayController = "traefik.io/gateway-controller"

// TraefikOptions choose Traefik's providers.
type TraefikOptions struct {
	// Namespace is the only namespace Traefik watches.
	Namespace string
	// IngressClass, when set, enables the ingress-nginx provider for Ingresses of that class (an
	// IngressClass of that name with controller k8s.io/ingress-nginx must exist).
	IngressClass string
	// GatewayAPI enables the Gateway API provider.
	GatewayAPI bool
}

// StartTraefik runs Traefik for the rest of the test (see LaunchTraefik); it is stopped in the
// test's cleanup, and the tail of its log is written to the test log if the test failed.
func (c *Cluster) StartTraefik(t testing.TB, opts TraefikOptions) *Traefik {
	t.Helper()
	tr, err := c.LaunchTraefik(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	stopAtCleanup(t, tr.Process)
	return tr
}

// LaunchTraefik starts Traefik and waits until its entry point accepts connections. The caller
// stops it (Stop); it also ends with the Cluster.
func (c *Cluster) LaunchTraefik(ctx context.Context, opts TraefikOptions) (*Traefik, error) {
	ports, dir, err := c.prepareDataPlane("traefik", 2)
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(c.Config.BearerToken), 0o600); err != nil {
		return nil, fmt.Errorf("writing traefik's token: %w", err)
	}
	kube := map[string]any{
		"endpoint":         c.Config.Host,
		"token":            tokenFile,
		"certAuthFilePath": filepath.Join(c.dir, "apiserver-certs", "apiserver.crt"),
		"throttleDuration": "100ms",
	}
	providers := map[string]any{"providersThrottleDuration": "100ms"}
	if opts.IngressClass != "" {
		p := map[string]any{
			"watchNamespace":     opts.Namespace,
			"ingressClass":       opts.IngressClass,
			"controllerClass":    "k8s.io/ingress-nginx",
			"ingressClassByName": true,
		}
		for k, v := range kube {
			p[k] = v
		}
		providers["kubernetesIngressNGINX"] = p
	}
	if opts.GatewayAPI {
		p := map[string]any{"namespaces": []string{opts.Namespace}}
		for k, v := range kube {
			p[k] = v
		}
		providers["kubernetesGateway"] = p
	}
	static := map[string]any{
		"entryPoints": map[string]any{
			"web": map[string]any{"address": "127.0.0.1:" + strconv.Itoa(ports[0])},
			// The ping endpoint answers once Traefik runs.
			"traefik": map[string]any{"address": "127.0.0.1:" + strconv.Itoa(ports[1])},
		},
		"ping":      map[string]any{},
		"providers": providers,
		"log":       map[string]any{"level": "INFO"},
		"accessLog": map[string]any{},
		"global":    map[string]any{"checkNewVersion": false, "sendAnonymousUsage": false},
	}
	data, err := yaml.Marshal(static)
	if err != nil {
		return nil, fmt.Errorf("writing traefik's configuration: %w", err)
	}
	cfg := filepath.Join(dir, "traefik.yaml")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		return nil, fmt.Errorf("writing traefik's configuration: %w", err)
	}
	p, err := c.sup.Start(ProcessSpec{
		Name: "traefik-" + opts.Namespace,
		Path: filepath.Join(c.ToolsBin, "traefik"),
		Args: []string{"--configFile=" + cfg},
		Dir:  dir,
	})
	if err != nil {
		return nil, err
	}
	tr := &Traefik{Process: p, Port: ports[0], URL: "http://127.0.0.1:" + strconv.Itoa(ports[0])}
	if err := waitHealthy(ctx, http.DefaultClient, "traefik", "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/ping", 60*time.Second); err != nil {
		_ = p.Stop(stopGrace)
		return nil, fmt.Errorf("%w\n%s", err, p.Tail(30))
	}
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ports[0]), 5*time.Second)
	if err != nil {
		_ = p.Stop(stopGrace)
		return nil, fmt.Errorf("traefik's entry point does not accept connections: %w\n%s", err, p.Tail(30))
	}
	_ = conn.Close()
	return tr, nil
}

// String names the gateway for logs.
func (tr *Traefik) String() string { return fmt.Sprintf("traefik at %s", tr.URL) }
