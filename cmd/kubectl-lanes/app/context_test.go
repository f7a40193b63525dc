package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Run hands its context to the command: a wait whose API request hangs returns, exit 1, once
// the context ends (before, Run took no context and such a call never returned; test/demo ran it
// in a goroutine it then leaked). The server answers discovery and hangs on every object read.
func TestRunEndsWithItsContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	discovery := map[string]any{
		"/api": metav1.APIVersions{Versions: []string{"v1"}},
		"/apis": metav1.APIGroupList{Groups: []metav1.APIGroup{{Name: "rollouts.kruise.io",
			Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: "rollouts.kruise.io/v1alpha1", Version: "v1alpha1"}},
			PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "rollouts.kruise.io/v1alpha1", Version: "v1alpha1"}}}},
		"/apis/rollouts.kruise.io/v1alpha1": metav1.APIResourceList{GroupVersion: "rollouts.kruise.io/v1alpha1", APIResources: []metav1.APIResource{
			{Name: "trafficroutings", Namespaced: true, Kind: "TrafficRouting", Verbs: metav1.Verbs{"get"}},
		}},
		"/api/v1": metav1.APIResourceList{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "configmaps", Namespaced: true, Kind: "ConfigMap", Verbs: metav1.Verbs{"get"}},
		}},
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if doc, ok := discovery[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "application/json")
			if err := json.NewEncoder(w).Encode(doc); err != nil {
				t.Errorf("discovery %s: %v", r.URL.Path, err)
			}
			return
		}
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answer; only the client giving up ends the request
	}))
	t.Cleanup(server.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: shop}}]
users: [{name: u, user: {}}]
current-context: c
`, server.URL), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		select {
		case <-arrived:
			cancel()
		case <-ctx.Done():
		}
	}()
	var out, errOut bytes.Buffer
	code := Run(ctx, []string{"wait", "lane", "--for=healthy", "--kubeconfig", kubeconfig}, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if code != 1 || !strings.Contains(errOut.String(), "context canceled") {
		t.Errorf("exit %d, stderr %q; want exit 1 saying the context was canceled", code, errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out.String())
	}
}

// The verbs that loop stop when their context ends: status -w after printing once, wait with an
// error.
func TestLoopingVerbsStopWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	out, errOut, code := runVerb(ctx, t, "status", "mse-traffic", "-w", "--interval=1h")
	if code != 0 || strings.Count(out, "Lane mse-traffic") != 1 {
		t.Errorf("status -w: exit %d, stdout %q, stderr %q; want the status once and exit 0", code, out, errOut)
	}
	out, errOut, code = runVerb(ctx, t, "wait", "mse-traffic", "--for=completed", "--interval=1h")
	if code != 1 || out != "" || !strings.HasSuffix(errOut, "error: context canceled\n") {
		t.Errorf("wait: exit %d, stdout %q, stderr %q; want exit 1 and context canceled", code, out, errOut)
	}
}
