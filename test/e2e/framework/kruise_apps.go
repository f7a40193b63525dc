//go:build e2e

package framework

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// KruiseAppsNamespace is where the OpenKruise manager (CloneSet & co.) keeps its certificate
	// Secret.
	KruiseAppsNamespace = "kruise-system"
	// kruiseAppsModule is OpenKruise itself, pinned by test/tools/kruise-apps.
	kruiseAppsModule = "github.com/openkruise/kruise"

	kruiseAppsMutatingWebhook   = "kruise-mutating-webhook-configuration"
	kruiseAppsValidatingWebhook = "kruise-validating-webhook-configuration"
)

// kruiseAppsWebhooks are the only OpenKruise webhooks the harness registers: CloneSet's defaulting
// and validation, which its controller relies on. The others (pods, built-in Deployments,
// ReplicaSets, StatefulSets, Namespaces, CRDs ...) have failurePolicy Fail and would put
// OpenKruise in the path of every scenario's pods and workloads.
func kruiseAppsWebhooks() map[string]bool {
	return map[string]bool{"mcloneset.kb.io": true, "vcloneset.kb.io": true}
}

// installKruiseAppsCRDs installs OpenKruise's CRDs (config/crd/bases of the pinned module). It
// must run before the Kruise Rollouts manager starts: Rollouts discovers CloneSet (and Advanced
// DaemonSet/StatefulSet) once, at start-up, and never watches them if they are missing then.
func installKruiseAppsCRDs(ctx context.Context, c client.Client, repoRoot string) (string, error) {
	dir, err := ModuleDir(ctx, repoRoot, "kruise-apps", kruiseAppsModule)
	if err != nil {
		return "", err
	}
	crds, err := ReadYAMLFiles(filepath.Join(dir, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		return "", err
	}
	return dir, InstallCRDs(ctx, c, crds)
}

// startKruiseApps runs the OpenKruise manager out of cluster, the way startKruise runs Kruise
// Rollouts: its webhook configurations (only the CloneSet webhooks, see kruiseAppsWebhooks) are
// created under the names the manager patches and pointed at https://127.0.0.1:<port>; the manager
// generates its certificate into a Secret of its namespace, writes its CA into them, and starts its
// controllers only once its webhook server answers.
func startKruiseApps(ctx context.Context, sup *Supervisor, c client.Client, moduleDir, toolsBin, dir, kubeconfig string) (*Process, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	webhookPort, metricsPort, probePort, pprofPort := ports[0], ports[1], ports[2], ports[3]
	base := "https://127.0.0.1:" + strconv.Itoa(webhookPort)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: KruiseAppsNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating namespace %s: %w", KruiseAppsNamespace, err)
	}
	configs, err := ReadYAMLFiles(filepath.Join(moduleDir, "config", "webhook", "manifests.yaml"))
	if err != nil {
		return nil, err
	}
	for _, cfg := range configs {
		switch cfg.GetName() {
		case "mutating-webhook-configuration":
			cfg.SetName(kruiseAppsMutatingWebhook)
		case "validating-webhook-configuration":
			cfg.SetName(kruiseAppsValidatingWebhook)
		default:
			return nil, fmt.Errorf("unexpected webhook configuration %s in OpenKruise's manifests", cfg.GetName())
		}
		if err := keepWebhooks(cfg, kruiseAppsWebhooks()); err != nil {
			return nil, err
		}
		if err := pointWebhooksAt(cfg, base, nil); err != nil {
			return nil, err
		}
	}
	if err := Apply(ctx, c, "", unstructuredObjects(configs)...); err != nil {
		return nil, err
	}

	args := []string{
		"--enable-leader-election=false",
		"--metrics-addr=127.0.0.1:" + strconv.Itoa(metricsPort),
		"--health-probe-addr=127.0.0.1:" + strconv.Itoa(probePort),
		"--pprof-addr=127.0.0.1:" + strconv.Itoa(pprofPort),
		"--enable-pprof=false",
		"--v=2",
	}
	// OpenKruise's defaults unless LANES_E2E_KRUISE_APPS_FEATURE_GATES says otherwise (for example
	// CloneSetShortHash=true, which changes the revision label of CloneSet pods).
	if gates := os.Getenv("LANES_E2E_KRUISE_APPS_FEATURE_GATES"); gates != "" {
		args = append(args, "--feature-gates="+gates)
	}
	p, err := sup.Start(ProcessSpec{
		Name: "kruise-manager",
		Path: filepath.Join(toolsBin, "kruise-manager"),
		Args: args,
		Env: []string{
			"KUBECONFIG=" + kubeconfig,
			"WEBHOOK_HOST=127.0.0.1",
			"WEBHOOK_PORT=" + strconv.Itoa(webhookPort),
			"WEBHOOK_CERT_DIR=" + filepath.Join(dir, "kruise-apps-webhook-certs"),
			"POD_NAMESPACE=" + KruiseAppsNamespace,
		},
	})
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, http.DefaultClient, "kruise-manager", "http://127.0.0.1:"+strconv.Itoa(probePort)+"/readyz", 90*time.Second); err != nil {
		return p, err
	}
	err = WaitFor(ctx, 60*time.Second, "OpenKruise's CloneSet webhooks to be served and registered", func(ctx context.Context) (bool, error) {
		if !p.Running() {
			return false, Permanent(fmt.Errorf("kruise-manager exited (log: %s): %w", p.LogPath(), p.ExitErr()))
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(webhookPort),
			&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only probing that the server speaks TLS
		if err != nil {
			return false, fmt.Errorf("webhook server: %w", err)
		}
		_ = conn.Close()
		return webhooksHaveCABundle(ctx, c, kruiseAppsMutatingWebhook, kruiseAppsValidatingWebhook)
	})
	return p, err
}

// keepWebhooks drops from a webhook configuration every webhook whose name is not in keep.
func keepWebhooks(cfg *unstructured.Unstructured, keep map[string]bool) error {
	hooks, _, err := unstructured.NestedSlice(cfg.Object, "webhooks")
	if err != nil {
		return fmt.Errorf("reading webhooks of %s: %w", cfg.GetName(), err)
	}
	var kept []any
	for _, h := range hooks {
		if hook, ok := h.(map[string]any); ok && keep[fmt.Sprint(hook["name"])] {
			kept = append(kept, hook)
		}
	}
	if len(kept) == 0 {
		return fmt.Errorf("%s has none of the webhooks %v", cfg.GetName(), keep)
	}
	return unstructured.SetNestedSlice(cfg.Object, kept, "webhooks")
}

// webhooksHaveCABundle reports whether every webhook of the named mutating and validating
// configurations has a caBundle.
func webhooksHaveCABundle(ctx context.Context, c client.Client, mutating, validating string) (bool, error) {
	for _, ref := range []struct{ kind, name string }{
		{"MutatingWebhookConfiguration", mutating},
		{"ValidatingWebhookConfiguration", validating},
	} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("admissionregistration.k8s.io/v1")
		u.SetKind(ref.kind)
		if err := c.Get(ctx, client.ObjectKey{Name: ref.name}, u); err != nil {
			return false, fmt.Errorf("reading %s: %w", ref.name, err)
		}
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		if len(hooks) == 0 {
			return false, Pending("%s has no webhooks", ref.name)
		}
		for _, h := range hooks {
			hook, _ := h.(map[string]any)
			if ca, _, _ := unstructured.NestedString(hook, "clientConfig", "caBundle"); ca == "" {
				return false, Pending("%s has a webhook without caBundle", ref.name)
			}
		}
	}
	return true, nil
}
