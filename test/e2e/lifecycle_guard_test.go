//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	toolswatch "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// laneGuard watches an open Istio lane of the demo chain with A and C released (canaries on
// v2) and records every moment it is not whole: a lane member's pod without the label of its
// side (istio.service.tag gray on v2, base on v1), a pod deleted, a lane VirtualService of A or
// C without its lane route or gone, a DestinationRule gone, or Kruise's canary Ingress gone or
// with other annotations than when the guard started. Its watches resume from the last
// resourceVersion they saw (client-go's RetryWatcher), so they see across an API server restart
// everything etcd recorded meanwhile.
type laneGuard struct {
	mu         sync.Mutex
	violations []string
	events     int
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// guardLane starts a laneGuard on ns, whose lane enters through the Ingress of chain[0].
func guardLane(t *testing.T, ns string) *laneGuard {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	g := &laneGuard{cancel: cancel}
	t.Cleanup(g.stop)
	wc, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: framework.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	canaryName := chain[0] + "-canary"
	canary := &networkingv1.Ingress{}
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: canaryName}, canary); err != nil {
		t.Fatalf("the lane's canary Ingress: %v", err)
	}
	canaryAnnotations := canary.Annotations
	laneSelector := client.MatchingLabels{trafficrouting.MeshLaneLabel: "lane"}
	released := map[string]bool{chain[0]: true, chain[2]: true}

	g.watch(ctx, t, wc, ns, &corev1.PodList{}, nil, func(ev watch.EventType, obj runtime.Object) string {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return ""
		}
		if ev == watch.Deleted || !p.DeletionTimestamp.IsZero() {
			return "pod " + p.Name + " deleted"
		}
		want := trafficrouting.BaseTag
		if p.Spec.Containers[0].Image == demoImage("v2") {
			want = "gray"
		}
		if got := p.Labels[trafficrouting.LabelIstio]; got != want {
			return fmt.Sprintf("pod %s (%s) has %s=%q, want %q", p.Name, p.Spec.Containers[0].Image, trafficrouting.LabelIstio, got, want)
		}
		return ""
	})
	g.watch(ctx, t, wc, ns, laneList("VirtualService"), laneSelector, func(ev watch.EventType, obj runtime.Object) string {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return ""
		}
		svc := u.GetLabels()[trafficrouting.MeshServiceLabel]
		switch {
		case ev == watch.Deleted:
			return "VirtualService " + u.GetName() + " deleted"
		case released[svc] && !istioHasLane(u):
			return "VirtualService " + u.GetName() + " lost its lane route"
		case !released[svc]:
			return "VirtualService " + u.GetName() + " for a member that is not released"
		}
		return ""
	})
	g.watch(ctx, t, wc, ns, laneList("DestinationRule"), laneSelector, func(ev watch.EventType, obj runtime.Object) string {
		if u, ok := obj.(*unstructured.Unstructured); ok && ev == watch.Deleted {
			return "DestinationRule " + u.GetName() + " deleted"
		}
		return ""
	})
	g.watch(ctx, t, wc, ns, &networkingv1.IngressList{}, nil, func(ev watch.EventType, obj runtime.Object) string {
		ing, ok := obj.(*networkingv1.Ingress)
		if !ok || ing.Name != canaryName {
			return ""
		}
		if ev == watch.Deleted {
			return "canary Ingress " + ing.Name + " deleted"
		}
		if !maps.Equal(ing.Annotations, canaryAnnotations) {
			return fmt.Sprintf("canary Ingress %s has annotations %v, had %v", ing.Name, ing.Annotations, canaryAnnotations)
		}
		return ""
	})
	return g
}

// laneList is an empty list of an Istio kind, to list or watch.
func laneList(kind string) *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetAPIVersion("networking.istio.io/v1")
	l.SetKind(kind + "List")
	return l
}

// watch lists list in ns (checking every object as it is now) and then
// watches it from that list's resourceVersion until the guard stops, recording what check
// returns for each event.
func (g *laneGuard) watch(ctx context.Context, t *testing.T, wc client.WithWatch, ns string, list client.ObjectList, sel client.MatchingLabels, check func(watch.EventType, runtime.Object) string) {
	t.Helper()
	opts := []client.ListOption{client.InNamespace(ns)}
	if sel != nil {
		opts = append(opts, sel)
	}
	if err := wc.List(ctx, list, opts...); err != nil {
		t.Fatal(err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range items {
		g.record(check(watch.Added, obj))
	}
	lw := &cache.ListWatch{WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
		return wc.Watch(ctx, list.DeepCopyObject().(client.ObjectList), append(opts, &client.ListOptions{Raw: &o})...)
	}}
	rw, err := toolswatch.NewRetryWatcherWithContext(ctx, list.GetResourceVersion(), lw)
	if err != nil {
		t.Fatal(err)
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer rw.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-rw.ResultChan():
				if !ok {
					g.record("a watch ended before the guard stopped")
					return
				}
				switch ev.Type {
				case watch.Bookmark:
				case watch.Error:
					g.record(fmt.Sprintf("watch error: %v", ev.Object))
				default:
					g.mu.Lock()
					g.events++
					g.mu.Unlock()
					g.record(check(ev.Type, ev.Object))
				}
			}
		}
	}()
}

func (g *laneGuard) record(violation string) {
	if violation == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.violations = append(g.violations, time.Now().Format("15:04:05.000")+" "+violation)
}

func (g *laneGuard) stop() {
	g.cancel()
	g.wg.Wait()
}

// check stops the guard and fails the test with every violation it recorded; it returns how many
// watch events it saw (the caller logs it, so that a guard that saw nothing is noticed).
func (g *laneGuard) check(t *testing.T, what string) int {
	t.Helper()
	g.stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.violations) > 0 {
		t.Errorf("%s: the lane was not whole at every moment:\n  %s", what, strings.Join(g.violations, "\n  "))
	}
	return g.events
}
