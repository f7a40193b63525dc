//go:build e2e

package framework

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LanesLeaseName is the Lease lanes-manager replicas elect their leader with (in LanesNamespace).
const LanesLeaseName = "lanes-manager.kruise-lanes.io"

// StartLanesReplica runs one more lanes-manager replica with leader election on, the way the
// chart's second replica runs beside the first: same certificate Secret, same webhook
// configuration name, same Lease. Unlike StartLanesManager it leaves the webhook configuration
// alone (the API server keeps calling whichever replica it points at; see PointLanesWebhookAt)
// and returns as soon as /readyz first answers 200, which is when a Service would start sending
// it admissions. It is stopped in the test's cleanup. The first replica is started with
// StartLanesManager(t, "--leader-elect=true").
func (c *Cluster) StartLanesReplica(t testing.TB, extraArgs ...string) *LanesManager {
	t.Helper()
	bin, err := c.LanesManagerBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := newLanesManager()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.spawnLanesManager(m, bin, t.TempDir(), append([]string{"--leader-elect=true"}, extraArgs...)); err != nil {
		t.Fatal(err)
	}
	m.closeAtCleanup(t)
	if err := m.WaitReadyz(t.Context(), 30*time.Second); err != nil {
		leading, lerr := m.Leading()
		t.Fatalf("%v (the replica leads: %v, %v): a replica that does not lead must still serve admissions\n%s", err, leading, lerr, m.Tail(30))
	}
	return m
}

// WaitReadyz polls /readyz every 20 ms until it answers 200 and returns at once: a test can send
// the first admission at the moment a kubelet's readiness probe would first pass.
func (m *LanesManager) WaitReadyz(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", m.ProbePort)
	for {
		if !m.Running() {
			return fmt.Errorf("%s exited before it was ready: %w", m.Name(), m.ExitErr())
		}
		if resp, err := hc.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: /readyz did not answer 200 within %s", m.Name(), timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Leading reports whether this replica leads: controller-runtime's gauge
// leader_election_master_status for the manager's Lease is 1 on the leader only.
func (m *LanesManager) Leading() (bool, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", m.MetricsPort))
	if err != nil {
		return false, fmt.Errorf("reading the metrics of %s: %w", m.Name(), err)
	}
	defer resp.Body.Close()
	want := fmt.Sprintf("leader_election_master_status{name=%q} ", LanesLeaseName)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, sc.Err()
}

// WaitLeading waits until m leads and returns when it was first seen leading (polled every 50 ms).
func (m *LanesManager) WaitLeading(ctx context.Context, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if !m.Running() {
			return time.Time{}, fmt.Errorf("%s exited: %w", m.Name(), m.ExitErr())
		}
		ok, err := m.Leading()
		if ok {
			return time.Now(), nil
		}
		last = err
		select {
		case <-ctx.Done():
			return time.Time{}, errors.Join(fmt.Errorf("%s did not lead within %s", m.Name(), timeout), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LanesLeaseHolder returns the holder identity of the replicas' Lease ("" when none holds it).
func (c *Cluster) LanesLeaseHolder(ctx context.Context) (string, error) {
	lease := &coordinationv1.Lease{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: LanesNamespace, Name: LanesLeaseName}, lease); err != nil {
		return "", fmt.Errorf("reading Lease %s/%s: %w", LanesNamespace, LanesLeaseName, err)
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// PointLanesWebhookAt sends the API server's pod admissions to the replica serving port, the way
// a Service's endpoints decide which replica answers: only the URL changes; the caBundle, which
// every replica's certificate (one Secret) is signed by, stays.
func (c *Cluster) PointLanesWebhookAt(ctx context.Context, port int) error {
	url := fmt.Sprintf("https://localhost:%d%s", port, lanesWebhookPath)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: LanesWebhookConfigName}, cfg); err != nil {
			return err
		}
		if len(cfg.Webhooks) != 1 || len(cfg.Webhooks[0].ClientConfig.CABundle) == 0 {
			return fmt.Errorf("%s has %d webhooks or no caBundle yet; start the first replica with StartLanesManager", LanesWebhookConfigName, len(cfg.Webhooks))
		}
		cfg.Webhooks[0].ClientConfig.URL = &url
		return c.Client.Update(ctx, cfg)
	})
	if err != nil {
		return fmt.Errorf("pointing %s at port %d: %w", LanesWebhookConfigName, port, err)
	}
	return nil
}
