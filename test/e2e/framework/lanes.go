//go:build e2e

package framework

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names the suite gives lanes-manager's objects.
const (
	LanesNamespace         = "lanes-system"
	LanesWebhookConfigName = "lanes-e2e-mutating-webhook-configuration"
	lanesWebhookPath       = "/mutate-lane-pod"
)

// LanesManager is a running lanes-manager process.
type LanesManager struct {
	*Process
	WebhookPort, MetricsPort, ProbePort int

	// unmount stops keeping the certificate files current.
	unmount func()
}

// LanesManagerBinary returns the path of lanes-manager as RunInTestNetwork built it from this
// repository before entering the test network (where the module proxy cannot be reached).
func (c *Cluster) LanesManagerBinary() (string, error) {
	if p := prebuilt("lanes-manager"); p != "" {
		return p, nil
	}
	return "", errors.New("lanes-manager was not built before entering the test network (framework.RunInTestNetwork builds it)")
}

// StartLanesManager runs lanes-manager out of cluster for the rest of the test (see
// LaunchLanesManager); it is stopped in the test's cleanup, and the tail of its log is written to
// the test log if the test failed.
func (c *Cluster) StartLanesManager(t testing.TB, extraArgs ...string) *LanesManager {
	t.Helper()
	m, err := c.LaunchLanesManager(t.Context(), t.TempDir(), extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	m.closeAtCleanup(t)
	return m
}

// closeAtCleanup stops the manager when the test ends, and shows its log's tail if the test failed.
func (m *LanesManager) closeAtCleanup(t testing.TB) {
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("stopping %s: %v", m.Name(), err)
		}
		if t.Failed() {
			t.Logf("----- %s (last 60 lines of %s)\n%s", m.Name(), m.LogPath(), m.Tail(60))
		}
	})
}

// LaunchLanesManager runs lanes-manager out of cluster, the way the chart configures it in cluster,
// except that the API server reaches its webhook by URL (https://localhost:<port>/mutate-lane-pod)
// and the serving certificate is issued for "localhost" and kept in certDir. The
// MutatingWebhookConfiguration is (re)created with the chart's policy; the manager's certificate
// rotator fills in its caBundle. It returns once /readyz answers and the caBundle is in place; the
// caller ends the manager with Close (the Cluster's Stop ends it too).
func (c *Cluster) LaunchLanesManager(ctx context.Context, certDir string, extraArgs ...string) (*LanesManager, error) {
	bin, err := c.LanesManagerBinary()
	if err != nil {
		return nil, err
	}
	if err := c.ensureLanesWebhookConfiguration(ctx, 0); err != nil {
		return nil, err
	}
	m, err := newLanesManager()
	if err != nil {
		return nil, err
	}
	if err := c.ensureLanesWebhookConfiguration(ctx, m.WebhookPort); err != nil {
		return nil, err
	}
	if err := c.spawnLanesManager(m, bin, certDir, extraArgs); err != nil {
		return nil, err
	}
	if err := m.waitReady(ctx, c.Client); err != nil {
		tail := m.Tail(30)
		return nil, errors.Join(fmt.Errorf("%w\n%s", err, tail), m.Close())
	}
	return m, nil
}

// newLanesManager picks the ports of a lanes-manager about to start.
func newLanesManager() (*LanesManager, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return &LanesManager{WebhookPort: ports[0], MetricsPort: ports[1], ProbePort: ports[2]}, nil
}

// spawnLanesManager keeps the certificate Secret's files in certDir and starts lanes-manager on
// m's ports with the suite's flags (leader election off unless extraArgs turn it on).
func (c *Cluster) spawnLanesManager(m *LanesManager, bin, certDir string, extraArgs []string) error {
	m.unmount = c.mountSecret(LanesNamespace, "lanes-webhook-cert", certDir)
	args := []string{
		"--namespace=" + LanesNamespace,
		"--leader-elect=false",
		"--webhook-host=127.0.0.1",
		"--webhook-port=" + strconv.Itoa(m.WebhookPort),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(m.MetricsPort),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(m.ProbePort),
		"--cert-dir=" + certDir,
		"--webhook-configuration=" + LanesWebhookConfigName,
		"--webhook-dns-name=localhost",
		// The lane validator only where a test asks for it (StartLanesManagerWithValidation).
		"--validating-webhook-configuration=",
	}
	name := "lanes-manager-" + strconv.Itoa(m.WebhookPort)
	p, err := c.sup.Start(ProcessSpec{
		Name: name,
		Path: bin,
		Args: append(args, extraArgs...),
		Env:  []string{"KUBECONFIG=" + c.Kubeconfig},
	})
	if err != nil {
		m.unmount()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	m.Process = p
	return nil
}

// waitReady waits until the manager answers /readyz, its caBundle is in the webhook configuration
// and its webhook port speaks TLS.
func (m *LanesManager) waitReady(ctx context.Context, c client.Client) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	err := WaitFor(ctx, 60*time.Second, "lanes-manager ready with its caBundle injected", func(ctx context.Context) (bool, error) {
		select {
		case <-m.Exited():
			return false, Permanent(fmt.Errorf("lanes-manager exited: %w", m.ExitErr()))
		default:
		}
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", m.ProbePort))
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, nil
		}
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := c.Get(ctx, client.ObjectKey{Name: LanesWebhookConfigName}, cfg); err != nil {
			return false, err
		}
		return len(cfg.Webhooks) == 1 && len(cfg.Webhooks[0].ClientConfig.CABundle) > 0, nil
	})
	if err != nil {
		return err
	}
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", m.WebhookPort), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that TLS is served
	if err != nil {
		return fmt.Errorf("lanes-manager webhook does not serve TLS: %w", err)
	}
	return conn.Close()
}

// Close stops the manager and stops keeping its certificate files current.
func (m *LanesManager) Close() error {
	err := m.Stop(stopGrace)
	m.unmount()
	return err
}

// ensureLanesWebhookConfiguration creates the lanes-system namespace and (re)writes the webhook
// configuration with the chart's policy, pointed at port (0: a placeholder until a port is known).
func (c *Cluster) ensureLanesWebhookConfiguration(ctx context.Context, port int) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LanesNamespace}}
	if err := c.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", LanesNamespace, err)
	}
	if port == 0 {
		return nil
	}
	url := fmt.Sprintf("https://localhost:%d%s", port, lanesWebhookPath)
	desired := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: LanesWebhookConfigName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "pods.lanes.kruise-lanes.io",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			TimeoutSeconds:          ptr.To[int32](5),
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
				Values: []string{"kube-system", LanesNamespace, "kruise-rollout"},
			}}},
		}},
	}
	existing := &admissionregistrationv1.MutatingWebhookConfiguration{}
	err := c.Client.Get(ctx, client.ObjectKey{Name: LanesWebhookConfigName}, existing)
	switch {
	case apierrors.IsNotFound(err):
		if err := c.Client.Create(ctx, desired); err != nil {
			return fmt.Errorf("creating %s: %w", LanesWebhookConfigName, err)
		}
	case err != nil:
		return fmt.Errorf("reading %s: %w", LanesWebhookConfigName, err)
	default:
		existing.Webhooks = desired.Webhooks // a fresh manager injects its own caBundle
		if err := c.Client.Update(ctx, existing); err != nil {
			return fmt.Errorf("updating %s: %w", LanesWebhookConfigName, err)
		}
	}
	return nil
}

// MountSecret keeps the files of Secret namespace/name in dir, polling it until the test ends, the
// way the kubelet keeps a Secret volume current for a pod. A Secret that does not exist yet is
// waited for.
func (c *Cluster) MountSecret(t testing.TB, namespace, name, dir string) {
	t.Helper()
	t.Cleanup(c.mountSecret(namespace, name, dir))
}

// mountSecret is MountSecret until the returned function is called; that function returns once
// the polling has stopped.
func (c *Cluster) mountSecret(namespace, name, dir string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(200 * time.Millisecond)
		defer ticker.Stop()
		written := map[string]string{}
		for {
			secret := &corev1.Secret{}
			if err := c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, secret); err == nil {
				for file, data := range secret.Data {
					if written[file] == string(data) {
						continue
					}
					if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err == nil {
						written[file] = string(data)
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// FreePorts returns n free TCP ports on the loopback interface, for a process a test starts itself.
func FreePorts(n int) ([]int, error) { return freePorts(n) }
