//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
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
	relists    int
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

// watch lists list in ns (checking every object as it is now), then watches it from that list's
// resourceVersion until the guard stops, recording what check returns for each event. A watch
// the API server ends with 410 Gone (a restarted API server's watch cache starts at etcd's
// current revision) is followed by a new list, as an informer does: an object known before and
// missing from it is checked as deleted, every other one as it is then.
func (g *laneGuard) watch(ctx context.Context, t *testing.T, wc client.WithWatch, ns string, list client.ObjectList, sel client.MatchingLabels, check func(watch.EventType, runtime.Object) string) {
	t.Helper()
	opts := []client.ListOption{client.InNamespace(ns)}
	if sel != nil {
		opts = append(opts, sel)
	}
	known := map[string]runtime.Object{}
	relist := func() (string, error) {
		l := list.DeepCopyObject().(client.ObjectList)
		if err := wc.List(ctx, l, opts...); err != nil {
			return "", err
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return "", err
		}
		seen := map[string]runtime.Object{}
		for _, obj := range items {
			if m, err := meta.Accessor(obj); err == nil {
				seen[m.GetName()] = obj
			}
			g.record(check(watch.Added, obj))
		}
		for name, obj := range known {
			if _, ok := seen[name]; !ok {
				g.record(check(watch.Deleted, obj))
			}
		}
		known = seen
		return l.GetResourceVersion(), nil
	}
	rv, err := relist()
	if err != nil {
		t.Fatal(err)
	}
	lw := &cache.ListWatch{WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
		return wc.Watch(ctx, list.DeepCopyObject().(client.ObjectList), append(opts, &client.ListOptions{Raw: &o})...)
	}}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for ctx.Err() == nil {
			if !g.follow(ctx, rv, lw, known, check) {
				return
			}
			g.mu.Lock()
			g.relists++
			g.mu.Unlock()
			var err error
			if rv, err = relist(); err != nil && ctx.Err() == nil {
				g.record(fmt.Sprintf("listing again after a watch ended: %v", err))
				return
			}
		}
	}()
}

// follow watches from rv, checking each event and keeping known current, until the guard stops
// (false) or the watch ends and a new list is needed (true).
func (g *laneGuard) follow(ctx context.Context, rv string, lw cache.WatcherWithContext, known map[string]runtime.Object, check func(watch.EventType, runtime.Object) string) bool {
	rw, err := toolswatch.NewRetryWatcherWithContext(ctx, rv, lw)
	if err != nil {
		g.record(fmt.Sprintf("watching from %s: %v", rv, err))
		return false
	}
	defer rw.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-rw.ResultChan():
			switch {
			case !ok:
				return true
			case ev.Type == watch.Bookmark:
			case ev.Type == watch.Error:
				if status, isStatus := ev.Object.(*metav1.Status); isStatus && status.Code == http.StatusGone {
					return true
				}
				g.record(fmt.Sprintf("watch error: %v", ev.Object))
			default:
				if m, err := meta.Accessor(ev.Object); err == nil {
					if ev.Type == watch.Deleted {
						delete(known, m.GetName())
					} else {
						known[m.GetName()] = ev.Object
					}
				}
				g.mu.Lock()
				g.events++
				g.mu.Unlock()
				g.record(check(ev.Type, ev.Object))
			}
		}
	}
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

// check stops the guard and fails the test with every violation it recorded; it logs how many
// watch events it saw and how often it listed again, so that a guard that saw nothing is noticed.
func (g *laneGuard) check(t *testing.T, what string) {
	t.Helper()
	g.stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.violations) > 0 {
		t.Errorf("%s: the lane was not whole at every moment:\n  %s", what, strings.Join(g.violations, "\n  "))
	}
	t.Logf("%s: the guard saw %d watch events and listed again %d times after a watch ended", what, g.events, g.relists)
}
