//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/plugin"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// The provider lifecycle scenarios share Kruise's ConfigMap with every other scenario that runs a
// lanes-manager, and the upgrade one installs the chart's release in lanes-system: none of them
// calls t.Parallel, and each puts the ConfigMap back as it found it.

// lifecycleUserKeys are the user's own keys of Kruise's ConfigMap in the lifecycle scenarios: a
// provider of another class and a note. Kruise Lanes must never touch them.
var lifecycleUserKeys = map[string]string{
	keyUserLua:  userKeys[keyUserLua],
	keyUserNote: userKeys[keyUserNote],
}

// repairDeadline is how soon a deleted or edited key of ours must be back ("within a few seconds").
const repairDeadline = 10 * time.Second

// ourProviders returns the scripts the manager installs by default (--providers=mse,higress, the
// chart's providers.install) keyed by their ConfigMap keys: the embedded text of this build.
func ourProviders(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, class := range []string{"mse", "higress"} {
		script, err := luascripts.Ingress(class)
		if err != nil {
			t.Fatal(err)
		}
		out["lua.traffic.routing.ingress."+class] = string(script)
	}
	return out
}

// TestLifecycleChartUpgrade: a release of the chart is upgraded while a lane is mid-release. The
// previous release's lanes-manager left older scripts under field manager kruise-lanes; after
// helm upgrade and the upgraded manager's start our keys hold this build's scripts (a
// ProvidersInstalled Event says so), the user's keys are untouched, and the lane keeps routing
// with our script: a changed lane rule is rendered by it (service-subset is the lane's own tag,
// which Kruise's built-in mse.lua would turn into "gray") and the release completes.
func TestLifecycleChartUpgrade(t *testing.T) {
	ctx := t.Context()
	c := cluster.Client
	cmKey := client.ObjectKey{Namespace: framework.KruiseNamespace, Name: plugin.ConfigMapName}
	restoreKruiseConfiguration(t, cmKey)
	ours := ourProviders(t)
	writeUserKeys(t, cmKey, lifecycleUserKeys, slices.Collect(maps.Keys(ours))...)

	h := newHelm(t)
	adoptCertSecret(t)
	t.Cleanup(func() {
		_, _ = h.run(context.Background(), "uninstall", chartRelease, "-n", chartNamespace, "--no-hooks", "--ignore-not-found")
	})
	out, err := h.run(ctx, "install", chartRelease, chartDir(), "-n", chartNamespace, "--create-namespace",
		"--set", chartOptInSelector)
	if err != nil {
		t.Fatalf("helm install: %v\n%s", err, out)
	}

	// What the previous release's lanes-manager left: its own scripts under our field manager,
	// applied below. They are the release before kruise-lanes.io/owned (testdata/previous_release),
	// so the canary Ingress below begins with their bookkeeping, which this build's scripts must
	// carry on from.
	previous := map[string]string{}
	for k := range ours {
		class, _ := luascripts.IngressClassOfKey(k)
		text, err := os.ReadFile(filepath.Join("testdata", "previous_release", class+".lua"))
		if err != nil {
			t.Fatal(err)
		}
		previous[k] = string(text)
	}

	// A lane mid-release under the previous release's scripts: tag blue, paused at its first step.
	const tag = "blue"
	ns := cluster.Namespace(t)
	m := newLaneMember(deployment(ns, "u", "example.com/u:v1", 3), 3, 1, 2)
	m.create(t, func(tr *rolloutsv1alpha1.TrafficRouting) {
		tr.Spec.Strategy.RequestHeaderModifier.Set[0].Value = tag
	})
	applyAsLanesManager(t, cmKey, previous) // after m.create, which installs this build's mse script
	m.release(t)
	canaryIngress := m.workload.GetName() + "-canary"
	routed := map[string]string{
		"nginx.ingress.kubernetes.io/canary-by-header":            "User-Agent",
		"nginx.ingress.kubernetes.io/canary-by-header-value":      "xiaoming",
		"mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag " + tag,
		"mse.ingress.kubernetes.io/service-subset":                tag,
	}
	waitCanaryIngressMarked(t, ns, canaryIngress, routed, "kruise-lanes.io/owned-keys")

	// The upgrade: a changed value, then the upgraded Deployment's manager (the old one is gone,
	// and so is its leader Lease, as when its pod is deleted and the lease has run out).
	out, err = h.run(ctx, "upgrade", chartRelease, chartDir(), "-n", chartNamespace, "--reuse-values", "--set", "manager.logLevel=debug")
	if err != nil {
		t.Fatalf("helm upgrade: %v\n%s", err, out)
	}
	_, args := releaseManifest(t, h)
	if !slices.Contains(args, "--zap-log-level=debug") {
		t.Fatalf("the upgraded Deployment's args do not carry the changed value: %v", args)
	}
	deleteLeaderLease(t)
	installedBefore := providerEventCount(t, "ProvidersInstalled", keyMSE)
	start := time.Now()
	startChartManager(t, "lanes-manager-upgraded", args)
	waitProviderKeys(t, cmKey, ours, 30*time.Second, "this build's scripts after the upgrade")
	t.Logf("our keys held this build's scripts %s after the upgraded manager was started", time.Since(start).Round(10*time.Millisecond))
	assertUserKeys(t, cmKey, lifecycleUserKeys)
	waitProviderEvent(t, "ProvidersInstalled", corev1.EventTypeNormal, keyMSE, installedBefore)

	// The lane keeps routing with our script: a changed rule is rendered by this build's mse.lua.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tr := &rolloutsv1alpha1.TrafficRouting{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "lane"}, tr); err != nil {
			return err
		}
		tr.Spec.Strategy.Matches[0].Headers[0].Value = "xiaohong"
		return c.Update(ctx, tr)
	})
	if err != nil {
		t.Fatalf("changing the lane's rule: %v", err)
	}
	routed["nginx.ingress.kubernetes.io/canary-by-header-value"] = "xiaohong"
	ing := waitOurCanaryIngress(t, ns, canaryIngress, routed)
	for _, k := range []string{"kruise-lanes.io/owned-keys", "kruise-lanes.io/preserved"} {
		if v, ok := ing.Annotations[k]; ok {
			t.Errorf("canary ingress %s still carries the previous release's %s=%q after this build's script ran", canaryIngress, k, v)
		}
	}
	t.Logf("%s after the upgrade: kruise-lanes.io/owned = %s", canaryIngress, ing.Annotations["kruise-lanes.io/owned"])

	// And the next step works: approval completes the release and closes the lane.
	m.complete(t)
	waitIngressGone(t, ns, canaryIngress)
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, c, client.ObjectKey{Namespace: ns, Name: "lane"}, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseHealthy); err != nil {
		t.Fatal(err)
	}
	assertUserKeys(t, cmKey, lifecycleUserKeys)
}

// TestLifecycleProviderRepair: while lanes-manager runs, someone deletes one of our keys, then
// edits its text (kubectl-style updates, other field managers): each time it is put back with
// this build's script within a few seconds, with a ProvidersRepaired Warning naming the key, and
// the user's keys are never touched.
func TestLifecycleProviderRepair(t *testing.T) {
	ctx := t.Context()
	c := cluster.Client
	cmKey := client.ObjectKey{Namespace: framework.KruiseNamespace, Name: plugin.ConfigMapName}
	restoreKruiseConfiguration(t, cmKey)
	ours := ourProviders(t)
	writeUserKeys(t, cmKey, lifecycleUserKeys, slices.Collect(maps.Keys(ours))...)

	cluster.StartLanesManager(t)
	waitProviderKeys(t, cmKey, ours, 30*time.Second, "our scripts installed")
	assertUserKeys(t, cmKey, lifecycleUserKeys)

	edits := []struct {
		name, manager string
		edit          func(data map[string]string)
	}{
		{"deleted", "kubectl-edit", func(data map[string]string) { delete(data, keyMSE) }},
		{"edited", "kubectl-patch", func(data map[string]string) {
			data[keyMSE] = "-- a hand edit\nreturn obj.annotations\n"
		}},
	}
	for _, e := range edits {
		repairedBefore := providerEventCount(t, "ProvidersRepaired", keyMSE)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cm := &corev1.ConfigMap{}
			if err := c.Get(ctx, cmKey, cm); err != nil {
				return err
			}
			e.edit(cm.Data)
			return c.Update(ctx, cm, client.FieldOwner(e.manager))
		})
		if err != nil {
			t.Fatalf("%s key %s as %s: %v", e.name, keyMSE, e.manager, err)
		}
		took := waitProviderKeys(t, cmKey, ours, repairDeadline, fmt.Sprintf("our key %s put back after it was %s", keyMSE, e.name))
		t.Logf("key %s %s by %s: put back after %s", keyMSE, e.name, e.manager, took.Round(10*time.Millisecond))
		waitProviderEvent(t, "ProvidersRepaired", corev1.EventTypeWarning, keyMSE, repairedBefore)
		assertUserKeys(t, cmKey, lifecycleUserKeys)
	}
}

// chartDir is the chart's folder in this repository.
func chartDir() string { return cluster.RepoRoot + "/charts/lanes" }

// writeUserKeys writes the user's keys into Kruise's ConfigMap as the user's own field manager
// (an update, as kubectl edit does), creating the ConfigMap if needed and removing the keys drop
// (keys of other scenarios, put back by restoreKruiseConfiguration).
func writeUserKeys(t *testing.T, key client.ObjectKey, user map[string]string, drop ...string) {
	t.Helper()
	ctx := t.Context()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm := &corev1.ConfigMap{}
		err := cluster.Client.Get(ctx, key, cm)
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: maps.Clone(user)}
			return cluster.Client.Create(ctx, cm, client.FieldOwner(userManager))
		}
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		for _, k := range drop {
			delete(cm.Data, k)
		}
		maps.Copy(cm.Data, user)
		return cluster.Client.Update(ctx, cm, client.FieldOwner(userManager))
	})
	if err != nil {
		t.Fatalf("writing the user's keys into %s: %v", key, err)
	}
}

// applyAsLanesManager server-side applies data to Kruise's ConfigMap under our field manager, as a
// lanes-manager would (forcing: it takes the keys over from whoever set them).
func applyAsLanesManager(t *testing.T, key client.ObjectKey, data map[string]string) {
	t.Helper()
	cfg := corev1apply.ConfigMap(key.Name, key.Namespace).WithData(data)
	if err := cluster.Client.Apply(t.Context(), cfg, client.FieldOwner(plugin.FieldManager), client.ForceOwnership); err != nil {
		t.Fatalf("applying %d keys to %s as %s: %v", len(data), key, plugin.FieldManager, err)
	}
}

// waitProviderKeys waits until every key of want holds its text and returns how long that took.
func waitProviderKeys(t *testing.T, key client.ObjectKey, want map[string]string, timeout time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	err := framework.WaitFor(t.Context(), timeout, what, func(ctx context.Context) (bool, error) {
		cm := &corev1.ConfigMap{}
		if err := cluster.Client.Get(ctx, key, cm); err != nil {
			return false, err
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			got, ok := cm.Data[k]
			switch {
			case !ok:
				return false, framework.Pending("key %s is missing; keys %v", k, slices.Sorted(maps.Keys(cm.Data)))
			case got != want[k]:
				return false, framework.Pending("key %s has %d bytes starting %q, want this build's %d-byte script", k, len(got), firstLine(got), len(want[k]))
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// assertUserKeys checks that the user's keys hold their values and still belong to the user's
// field manager alone.
func assertUserKeys(t *testing.T, key client.ObjectKey, user map[string]string) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := cluster.Client.Get(t.Context(), key, cm); err != nil {
		t.Fatal(err)
	}
	for k, v := range user {
		if cm.Data[k] != v {
			t.Errorf("user key %s = %q, want it untouched: %q", k, cm.Data[k], v)
		}
	}
	owned := dataKeysOf(t, cm, userManager)
	ourKeys := dataKeysOf(t, cm, plugin.FieldManager)
	for k := range user {
		if !slices.Contains(owned, k) {
			t.Errorf("user key %s no longer belongs to field manager %s (it owns %v)", k, userManager, owned)
		}
		if slices.Contains(ourKeys, k) {
			t.Errorf("field manager %s took the user's key %s", plugin.FieldManager, k)
		}
	}
}

// firstLine is s up to its first newline, for messages.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// waitOurCanaryIngress waits until the canary Ingress carries want and our script's bookkeeping
// annotation (which Kruise's built-in scripts never write), and returns it.
func waitOurCanaryIngress(t *testing.T, ns, name string, want map[string]string) *networkingv1.Ingress {
	t.Helper()
	return waitCanaryIngressMarked(t, ns, name, want, "kruise-lanes.io/owned")
}

// waitCanaryIngressMarked waits until the canary Ingress carries want, then requires the
// bookkeeping annotation marker (this build's, or a previous release's) and returns it.
func waitCanaryIngressMarked(t *testing.T, ns, name string, want map[string]string, marker string) *networkingv1.Ingress {
	t.Helper()
	ing := waitIngressAnnotations(t, ns, name, want)
	if _, ok := ing.Annotations[marker]; !ok {
		t.Fatalf("canary ingress %s has no %s: not written by the script expected; annotations %v", name, marker, ing.Annotations)
	}
	return ing
}

// deleteLeaderLease removes lanes-manager's leader Lease in lanes-system, left by a manager of an
// earlier scenario that is no longer running, so that the next one leads at once.
func deleteLeaderLease(t *testing.T) {
	t.Helper()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: chartNamespace, Name: "lanes-manager.kruise-lanes.io"}}
	if err := cluster.Client.Delete(t.Context(), lease); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting the leader Lease: %v", err)
	}
}

// providerEventCount counts the occurrences of Events with reason on Kruise's ConfigMap whose
// message names key (an Event recorded again counts again).
func providerEventCount(t *testing.T, reason, key string) int {
	t.Helper()
	n, _, err := providerEvents(t.Context(), reason, key)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// providerEvents counts the occurrences of Events with reason on Kruise's ConfigMap naming key, and
// lists every Event on the ConfigMap (for messages).
func providerEvents(ctx context.Context, reason, key string) (int, []corev1.Event, error) {
	events := &corev1.EventList{}
	if err := cluster.Client.List(ctx, events, client.InNamespace(framework.KruiseNamespace)); err != nil {
		return 0, nil, err
	}
	n := 0
	var onCM []corev1.Event
	for _, e := range events.Items {
		if e.InvolvedObject.Kind != "ConfigMap" || e.InvolvedObject.Name != plugin.ConfigMapName {
			continue
		}
		onCM = append(onCM, e)
		if e.Reason == reason && strings.Contains(e.Message, key) {
			n += max(int(e.Count), 1)
			if e.Series != nil {
				n = max(n, int(e.Series.Count))
			}
		}
	}
	return n, onCM, nil
}

// waitProviderEvent waits for a new Event (beyond the count seen before) of the given reason and
// type on Kruise's ConfigMap naming key.
func waitProviderEvent(t *testing.T, reason, eventType, key string, before int) {
	t.Helper()
	err := framework.WaitFor(t.Context(), repairDeadline, fmt.Sprintf("a %s Event naming %s", reason, key), func(ctx context.Context) (bool, error) {
		n, all, err := providerEvents(ctx, reason, key)
		if err != nil {
			return false, err
		}
		if n > before {
			for _, e := range all {
				if e.Reason == reason && strings.Contains(e.Message, key) && e.Type != eventType {
					return false, framework.Permanent(fmt.Errorf("event %s is %s, want %s: %s", reason, e.Type, eventType, e.Message))
				}
			}
			return true, nil
		}
		var seen []string
		for _, e := range all {
			seen = append(seen, fmt.Sprintf("%s %s (x%d): %s", e.Type, e.Reason, max(e.Count, 1), e.Message))
		}
		return false, framework.Pending("events on the ConfigMap: %v", seen)
	})
	if err != nil {
		t.Fatal(err)
	}
}
