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
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// KruiseNamespace is where the Kruise Rollouts manager runs and reads its configuration from.
	KruiseNamespace = "kruise-rollout"
	// KruiseConfigMap is the ConfigMap whose lua.* keys override Kruise's built-in Lua scripts.
	KruiseConfigMap = "kruise-rollout-configuration"

	kruiseMutatingWebhook   = "kruise-rollout-mutating-webhook-configuration"
	kruiseValidatingWebhook = "kruise-rollout-validating-webhook-configuration"
)

// kruiseConvertedCRDs serve both v1alpha1 and v1beta1 and need Kruise's conversion webhook. The CRDs
// in config/crd/bases declare no conversion (kustomize patches add it), and Kruise only fills in the
// webhook of a CRD whose strategy is already Webhook: without it a v1alpha1 Rollout is stored with
// its v1alpha1 fields under v1beta1 and the controller never sees its workload.
func kruiseConvertedCRDs() map[string]bool {
	return map[string]bool{
		"rollouts.rollouts.kruise.io":      true,
		"batchreleases.rollouts.kruise.io": true,
	}
}

// startKruise installs what the Kruise Rollouts manager expects to find (CRDs, its namespace, its
// webhook configurations under their kustomize-prefixed names) and runs it out of cluster, waiting
// until its webhooks are served and registered. It also returns that wait, for a restart.
func startKruise(ctx context.Context, sup *Supervisor, c client.Client, toolsBin, dir, kubeconfig string) (*Process, func(context.Context, *Process) error, error) {
	staged := filepath.Join(toolsBin, "kruise-rollouts")
	if _, err := os.Stat(filepath.Join(staged, "lua_configuration")); err != nil {
		return nil, nil, fmt.Errorf("the staged files of the Kruise manager are missing (run make tools): %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, nil, err
	}
	webhookPort, metricsPort, probePort := ports[0], ports[1], ports[2]
	webhookBase := "https://127.0.0.1:" + strconv.Itoa(webhookPort)

	crds, err := ReadYAMLFiles(filepath.Join(staged, "crds", "*.yaml"))
	if err != nil {
		return nil, nil, err
	}
	for _, crd := range crds {
		if !kruiseConvertedCRDs()[crd.GetName()] {
			continue
		}
		conversion := map[string]any{
			"strategy": "Webhook",
			"webhook": map[string]any{
				"clientConfig":             map[string]any{"url": webhookBase + "/convert"},
				"conversionReviewVersions": []any{"v1", "v1beta1"},
			},
		}
		if err := unstructured.SetNestedMap(crd.Object, conversion, "spec", "conversion"); err != nil {
			return nil, nil, fmt.Errorf("enabling conversion on CRD %s: %w", crd.GetName(), err)
		}
	}
	if err := InstallCRDs(ctx, c, crds); err != nil {
		return nil, nil, err
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: KruiseNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, nil, fmt.Errorf("creating namespace %s: %w", KruiseNamespace, err)
	}
	webhooks, err := ReadYAMLFiles(filepath.Join(staged, "webhook", "manifests.yaml"))
	if err != nil {
		return nil, nil, err
	}
	patches, err := ReadYAMLFiles(filepath.Join(staged, "webhook", "patch_manifests.yaml"))
	if err != nil {
		return nil, nil, err
	}
	selectors, err := webhookObjectSelectors(patches)
	if err != nil {
		return nil, nil, err
	}
	for _, wh := range webhooks {
		if err := pointWebhooksAt(wh, webhookBase, selectors); err != nil {
			return nil, nil, err
		}
	}
	if err := Apply(ctx, c, "", unstructuredObjects(webhooks)...); err != nil {
		return nil, nil, err
	}

	certDir := filepath.Join(dir, "kruise-webhook-certs")
	p, err := sup.Start(ProcessSpec{
		Name: "kruise-rollouts-manager",
		Path: filepath.Join(toolsBin, "kruise-rollouts-manager"),
		// Built-in Lua scripts are read from ./lua_configuration at start-up.
		Dir: staged,
		Args: []string{
			"--feature-gates=AdvancedDeployment=true",
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metricsPort),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(probePort),
			"--leader-elect=false",
			"--v=3",
		},
		Env: []string{
			"KUBECONFIG=" + kubeconfig,
			"WEBHOOK_HOST=127.0.0.1",
			"WEBHOOK_PORT=" + strconv.Itoa(webhookPort),
			"WEBHOOK_CERT_DIR=" + certDir,
			"POD_NAMESPACE=" + KruiseNamespace,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	ready := kruiseReadiness(c, webhookPort, probePort)
	return p, ready, ready(ctx, p)
}

// kruiseReadiness returns the wait for a Kruise manager serving on these ports: /readyz answers,
// its webhook server speaks TLS and its webhooks and conversion webhooks carry its CA. A restarted
// manager (RestartKruise) is waited for the same way.
func kruiseReadiness(c client.Client, webhookPort, probePort int) func(context.Context, *Process) error {
	return func(ctx context.Context, p *Process) error {
		if err := waitHealthy(ctx, http.DefaultClient, "kruise-rollouts-manager", "http://127.0.0.1:"+strconv.Itoa(probePort)+"/readyz", 60*time.Second); err != nil {
			return err
		}
		return WaitFor(ctx, 60*time.Second, "Kruise's webhooks to be served and registered", func(ctx context.Context) (bool, error) {
			if !p.Running() {
				return false, Permanent(fmt.Errorf("kruise-rollouts-manager exited (log: %s): %w", p.LogPath(), p.ExitErr()))
			}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(webhookPort),
				&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only probing that the server speaks TLS
			if err != nil {
				return false, fmt.Errorf("webhook server: %w", err)
			}
			_ = conn.Close()
			return kruiseWebhooksRegistered(ctx, c)
		})
	}
}

// installKruiseCRDs installs Kruise Rollouts' CRDs as they are staged, for a suite that plays
// Kruise's part itself (Options.WithoutKruise).
func installKruiseCRDs(ctx context.Context, c client.Client, toolsBin string) error {
	crds, err := ReadYAMLFiles(filepath.Join(toolsBin, "kruise-rollouts", "crds", "*.yaml"))
	if err != nil {
		return err
	}
	return InstallCRDs(ctx, c, crds)
}

// pointWebhooksAt replaces the in-cluster Service reference of every webhook in a
// Mutating/ValidatingWebhookConfiguration with a URL on base (Kruise overwrites the client configs
// with its own CA once it runs; this only makes them valid before it does), and sets the
// objectSelector Kruise's kustomize patch gives the webhook. Without those selectors the raw
// manifest's unified-workload webhook intercepts every CREATE and UPDATE of every resource, even
// the manager's own update of its CRDs before its webhook server is up, and it never starts.
func pointWebhooksAt(cfg *unstructured.Unstructured, base string, selectors map[string]map[string]any) error {
	hooks, _, err := unstructured.NestedSlice(cfg.Object, "webhooks")
	if err != nil {
		return fmt.Errorf("reading webhooks of %s: %w", cfg.GetName(), err)
	}
	for i, h := range hooks {
		hook, ok := h.(map[string]any)
		if !ok {
			return fmt.Errorf("webhook %d of %s is not an object", i, cfg.GetName())
		}
		path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
		hook["clientConfig"] = map[string]any{"url": base + path}
		if sel, ok := selectors[fmt.Sprint(hook["name"])]; ok {
			hook["objectSelector"] = sel
		}
		hooks[i] = hook
	}
	return unstructured.SetNestedSlice(cfg.Object, hooks, "webhooks")
}

// webhookObjectSelectors reads the objectSelector of each webhook, by name, from Kruise's kustomize
// patch config/webhook/patch_manifests.yaml.
func webhookObjectSelectors(patches []*unstructured.Unstructured) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for _, p := range patches {
		hooks, _, err := unstructured.NestedSlice(p.Object, "webhooks")
		if err != nil {
			return nil, fmt.Errorf("reading webhook patch %s: %w", p.GetName(), err)
		}
		for _, h := range hooks {
			hook, _ := h.(map[string]any)
			if sel, ok := hook["objectSelector"].(map[string]any); ok {
				out[fmt.Sprint(hook["name"])] = sel
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no webhook objectSelector found in Kruise's patch_manifests.yaml")
	}
	return out, nil
}

// kruiseWebhooksRegistered reports whether Kruise has written its CA into both webhook
// configurations and the conversion webhooks of its CRDs.
func kruiseWebhooksRegistered(ctx context.Context, c client.Client) (bool, error) {
	for _, ref := range []struct{ kind, name string }{
		{"MutatingWebhookConfiguration", kruiseMutatingWebhook},
		{"ValidatingWebhookConfiguration", kruiseValidatingWebhook},
	} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("admissionregistration.k8s.io/v1")
		u.SetKind(ref.kind)
		if err := c.Get(ctx, client.ObjectKey{Name: ref.name}, u); err != nil {
			return false, fmt.Errorf("reading %s: %w", ref.name, err)
		}
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		for _, h := range hooks {
			hook, _ := h.(map[string]any)
			if ca, _, _ := unstructured.NestedString(hook, "clientConfig", "caBundle"); ca == "" {
				return false, Pending("%s has a webhook without caBundle", ref.name)
			}
		}
	}
	for name := range kruiseConvertedCRDs() {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiextensions.k8s.io/v1")
		u.SetKind("CustomResourceDefinition")
		if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
			return false, fmt.Errorf("reading CRD %s: %w", name, err)
		}
		if ca, _, _ := unstructured.NestedString(u.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle"); ca == "" {
			return false, Pending("CRD %s has no conversion caBundle yet", name)
		}
	}
	return true, nil
}

// InstallCRDs applies CustomResourceDefinitions and waits until every one is Established.
func InstallCRDs(ctx context.Context, c client.Client, crds []*unstructured.Unstructured) error {
	for _, crd := range crds {
		if crd.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("%s %s is not a CustomResourceDefinition", crd.GetKind(), crd.GetName())
		}
	}
	if err := Apply(ctx, c, "", unstructuredObjects(crds)...); err != nil {
		return err
	}
	return WaitFor(ctx, 60*time.Second, "CRDs to be established", func(ctx context.Context) (bool, error) {
		for _, crd := range crds {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(crd.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKey{Name: crd.GetName()}, u); err != nil {
				return false, err
			}
			if !crdEstablished(u) {
				return false, Pending("CRD %s is not established", crd.GetName())
			}
		}
		return true, nil
	})
}

func crdEstablished(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// SetKruiseConfiguration sets one key of Kruise's ConfigMap kruise-rollout-configuration, creating
// the ConfigMap if needed and keeping every other key. Kruise reads the ConfigMap through its
// informer cache each time it builds a traffic-routing provider, so no restart is needed; the new
// value applies from the next reconcile after the watch event arrives.
func SetKruiseConfiguration(ctx context.Context, c client.Client, key, value string) error {
	// Tests in parallel set keys at once: a lost race to create or update is tried again.
	lostRace := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	return retry.OnError(retry.DefaultRetry, lostRace, func() error {
		cm := &corev1.ConfigMap{}
		err := c.Get(ctx, client.ObjectKey{Namespace: KruiseNamespace, Name: KruiseConfigMap}, cm)
		switch {
		case apierrors.IsNotFound(err):
			cm = &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: KruiseNamespace, Name: KruiseConfigMap},
				Data:       map[string]string{key: value},
			}
			if err := c.Create(ctx, cm); err != nil {
				return fmt.Errorf("creating %s/%s: %w", KruiseNamespace, KruiseConfigMap, err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("reading %s/%s: %w", KruiseNamespace, KruiseConfigMap, err)
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[key] = value
		if err := c.Update(ctx, cm); err != nil {
			return fmt.Errorf("updating %s/%s key %s: %w", KruiseNamespace, KruiseConfigMap, key, err)
		}
		return nil
	})
}
