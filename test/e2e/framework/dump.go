//go:build e2e

package framework

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// dumpedKinds are the kinds a failed scenario's dump lists in its namespace; the first ones are
// also written in full to the test log.
func dumpedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		{Group: "rollouts.kruise.io", Version: "v1beta1", Kind: "Rollout"},
		{Group: "rollouts.kruise.io", Version: "v1alpha1", Kind: "TrafficRouting"},
		{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"},
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "apps", Version: "v1", Kind: "StatefulSet"},
		{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "CloneSet"}, // listed only where OpenKruise is installed
		{Group: "apps", Version: "v1", Kind: "ControllerRevision"},
		{Group: "rollouts.kruise.io", Version: "v1beta1", Kind: "BatchRelease"},
		{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
		{Group: "", Version: "v1", Kind: "Pod"},
		{Group: "", Version: "v1", Kind: "Service"},
		{Group: "", Version: "v1", Kind: "Event"},
	}
}

// inLogKinds is how many of dumpedKinds are printed in full in the test log.
const inLogKinds = 3

// DumpOnFailure writes the objects of namespace and the tail of every component log to the test
// log, and the complete objects to <ArtifactsDir>/<test name>/objects.yaml.
func (c *Cluster) DumpOnFailure(ctx context.Context, t testing.TB, namespace string) {
	t.Helper()
	dir := filepath.Join(c.ArtifactsDir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("dump: %v", err)
	}
	var all strings.Builder
	for i, gvk := range dumpedKinds() {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.Client.List(ctx, list, client.InNamespace(namespace)); err != nil {
			t.Logf("dump: listing %s in %s: %v", gvk.Kind, namespace, err)
			continue
		}
		var summary []string
		for _, item := range list.Items {
			item.SetManagedFields(nil)
			out, err := yaml.Marshal(item.Object)
			if err != nil {
				t.Logf("dump: %s %s: %v", gvk.Kind, item.GetName(), err)
				continue
			}
			fmt.Fprintf(&all, "---\n%s", out)
			if i < inLogKinds {
				t.Logf("----- %s %s/%s\n%s", gvk.Kind, namespace, item.GetName(), out)
			} else {
				summary = append(summary, item.GetName())
			}
		}
		if i >= inLogKinds {
			t.Logf("----- %s in %s: %s", gvk.Kind, namespace, strings.Join(summary, ", "))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "objects.yaml"), []byte(all.String()), 0o644); err != nil {
		t.Logf("dump: %v", err)
	}
	for _, p := range c.sup.Processes() {
		t.Logf("----- %s (last 40 lines of %s)\n%s", p.Name(), p.LogPath(), p.Tail(40))
	}
	if err := copyDir(c.sup.logDir, filepath.Join(dir, "logs")); err != nil {
		t.Logf("dump: copying component logs: %v", err)
	}
	t.Logf("dump: objects and component logs written to %s", dir)
}

// copyDir copies the regular files of src (not recursively) into dst.
func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("opening %s: %w", src, err)
	}
	defer in.Close() //nolint:errcheck // opened read-only: closing it cannot lose data
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", dst, err)
	}
	return nil
}
