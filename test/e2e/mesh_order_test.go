//go:build e2e

package e2e

import (
	"context"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// routeOrder records, per member Service, the revision at which its lane route went and the
// revision at which one of its lane pods first went (deleted, terminating, or no longer labelled
// with the lane's tag).
// Revisions come from the one etcd behind the API server, so they order the two across kinds.
type routeOrder struct {
	mu        sync.Mutex
	routeGone map[string]uint64
	podMoved  map[string]uint64
	errs      []error
	stop      func()
	done      chan struct{}
}

// watchRouteOrder starts watching the lane's route objects and the namespace's pods.
func watchRouteOrder(t *testing.T, ns string, m meshCase) *routeOrder {
	t.Helper()
	wc, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: framework.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	routes := &unstructured.UnstructuredList{}
	routes.SetAPIVersion(m.routeKind[0])
	routes.SetKind(m.routeKind[1] + "List")
	rw, err := wc.Watch(ctx, routes, client.InNamespace(ns), client.MatchingLabels{trafficrouting.MeshLaneLabel: "lane"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pw, err := wc.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		rw.Stop()
		t.Fatal(err)
	}
	o := &routeOrder{routeGone: map[string]uint64{}, podMoved: map[string]uint64{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev := range rw.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted || (ev.Type == watch.Modified && !m.hasLane(u)) {
				o.first(o.routeGone, u.GetLabels()[trafficrouting.MeshServiceLabel], u.GetResourceVersion())
			}
		}
	}()
	labels := map[string]string{} // pod name → lane label value last seen
	go func() {
		defer wg.Done()
		for ev := range pw.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			before := labels[p.Name]
			labels[p.Name] = p.Labels[m.label]
			wasLane := before == "gray" || (ev.Type != watch.Modified && p.Labels[m.label] == "gray")
			gone := ev.Type == watch.Deleted || !p.DeletionTimestamp.IsZero() || p.Labels[m.label] != "gray"
			if ev.Type != watch.Added && wasLane && gone {
				o.first(o.podMoved, p.Labels["app"], p.ResourceVersion)
			}
		}
	}()
	o.stop = func() { cancel(); rw.Stop(); pw.Stop(); wg.Wait(); close(o.done) }
	t.Cleanup(func() {
		select {
		case <-o.done:
		default:
			o.stop()
		}
	})
	return o
}

func (o *routeOrder) first(into map[string]uint64, key, rv string) {
	n, err := strconv.ParseUint(rv, 10, 64)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.errs = append(o.errs, err)
		return
	}
	if _, ok := into[key]; !ok {
		into[key] = n
	}
}

// check stops the watches and asserts that each member's lane route went before any of its lane
// pods did.
func (o *routeOrder) check(t *testing.T, members []string) {
	t.Helper()
	o.stop()
	for _, err := range o.errs {
		t.Errorf("resource version: %v", err)
	}
	for _, name := range members {
		gone, ok := o.routeGone[name]
		if !ok {
			t.Errorf("%s: the watch saw no removal of its lane route", name)
			continue
		}
		moved, ok := o.podMoved[name]
		if !ok {
			t.Errorf("%s: the watch saw none of its lane pods go or lose the lane label after approval", name)
			continue
		}
		if gone >= moved {
			t.Errorf("%s: its lane route went at revision %d, after one of its lane pods went at revision %d", name, gone, moved)
		} else {
			t.Logf("%s: lane route removed at revision %d, first lane pod gone at revision %d", name, gone, moved)
		}
	}
}
