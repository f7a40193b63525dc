//go:build e2e

package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// TestResolverIndexersFromARealCache checks, against controller-runtime's own informer cache
// over the real API server, what lane decisions rely on when they read the informers' stores
// (trafficrouting.IndexersFrom): every kind's informer exposes its store, the Rollouts' store
// carries the field index RolloutWorkloadIndex under the name and keys the Resolver reads it by,
// and kinds cached from chosen namespaces (--watch-namespaces) go through the cache reader.
func TestResolverIndexersFromARealCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t)
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}

	start := func(opts cache.Options) (*trafficrouting.Indexers, []string) {
		t.Helper()
		opts.Scheme = scheme
		opts.DefaultTransform = trafficrouting.CacheTransform
		c, err := cache.New(cluster.Config, opts)
		if err != nil {
			t.Fatal(err)
		}
		// As lanes-manager does: the field index first, then the stores.
		if err := c.IndexField(ctx, &rolloutsv1beta1.Rollout{}, trafficrouting.RolloutWorkloadIndex, trafficrouting.IndexRolloutWorkload); err != nil {
			t.Fatal(err)
		}
		x, viaReader, err := trafficrouting.IndexersFrom(ctx, c, false)
		if err != nil {
			t.Fatal(err)
		}
		cacheCtx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		go func() { _ = c.Start(cacheCtx) }()
		if !c.WaitForCacheSync(ctx) {
			t.Fatal("the cache did not sync")
		}
		return x, viaReader
	}

	x, viaReader := start(cache.Options{})
	if len(viaReader) != 0 {
		t.Errorf("kinds read through the cache reader with a cluster-wide cache: %q, want none", viaReader)
	}
	for name, idx := range map[string]any{"ReplicaSets": x.ReplicaSets, "Deployments": x.Deployments, "StatefulSets": x.StatefulSets,
		"Rollouts": x.Rollouts, "TrafficRoutings": x.TrafficRoutings, "EntryIngresses": x.EntryIngresses} {
		if idx == nil {
			t.Errorf("%s: no store", name)
		}
	}
	if x.Rollouts == nil {
		t.FailNow()
	}
	d := deployment(ns, "indexed", "demo:v1", 1)
	ro := laneRollout(d)
	if err := cluster.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Client.Create(ctx, ro); err != nil {
		t.Fatal(err)
	}
	// The key the Resolver asks the index for: "<namespace>/<Kind>/<name>".
	key := ns + "/Deployment/" + d.Name
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		items, err := x.Rollouts.ByIndex(trafficrouting.RolloutWorkloadFieldIndex, key)
		if err != nil {
			return false, err
		}
		return len(items) == 1 && items[0].(*rolloutsv1beta1.Rollout).Name == ro.Name, nil
	})
	if err != nil {
		items, _ := x.Rollouts.ByIndex(trafficrouting.RolloutWorkloadFieldIndex, key)
		t.Fatalf("the Rollouts' store under %s %q: %d items, want %s (%v)", trafficrouting.RolloutWorkloadFieldIndex, key, len(items), ro.Name, err)
	}

	// Workload kinds cached from chosen namespaces: their informers keep no single store.
	scoped, viaReader := start(cache.Options{ByObject: map[client.Object]cache.ByObject{
		&appsv1.ReplicaSet{}: {Namespaces: map[string]cache.Config{ns: {}, "default": {}}},
		&appsv1.Deployment{}: {Namespaces: map[string]cache.Config{ns: {}, "default": {}}},
		&corev1.Pod{}:        {Namespaces: map[string]cache.Config{ns: {}, "default": {}}},
	}})
	for _, kind := range []string{"*v1.ReplicaSet", "*v1.Deployment"} {
		if !slices.Contains(viaReader, kind) {
			t.Errorf("kinds read through the cache reader with %s cached per namespace: %q, want %s among them", kind, viaReader, kind)
		}
	}
	if scoped.ReplicaSets != nil || scoped.Deployments != nil || scoped.Rollouts == nil {
		t.Errorf("per-namespace stores: ReplicaSets %v, Deployments %v, Rollouts %v; want the first two read through the reader", scoped.ReplicaSets, scoped.Deployments, scoped.Rollouts)
	}
}
