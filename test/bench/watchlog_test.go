//go:build e2e

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	toolscache "k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// seen is one watch event as the benchmark received it.
type seen struct {
	at      time.Time
	obj     *unstructured.Unstructured
	deleted bool
}

// watchLog records every event of one resource in one namespace, keyed by keyOf, with the time
// the event arrived. Readers wait for an event after a mark that satisfies a condition.
type watchLog struct {
	keyOf func(*unstructured.Unstructured) string

	mu      sync.Mutex
	events  map[string][]seen
	changed chan struct{} // closed and replaced on every event
	err     error         // why the watch ended, once it has
}

// startWatchLog lists the resource to learn its resourceVersion and watches it from there until
// ctx ends, re-establishing the watch when the API server closes it.
func startWatchLog(ctx context.Context, dc dynamic.Interface, gvr schema.GroupVersionResource, namespace string, keyOf func(*unstructured.Unstructured) string) (*watchLog, error) {
	ri := dc.Resource(gvr).Namespace(namespace)
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", gvr.Resource, namespace, err)
	}
	lw := &toolscache.ListWatch{WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		return ri.Watch(ctx, opts)
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.GetResourceVersion(), lw)
	if err != nil {
		return nil, fmt.Errorf("watch %s in %s: %w", gvr.Resource, namespace, err)
	}
	l := &watchLog{keyOf: keyOf, events: map[string][]seen{}, changed: make(chan struct{})}
	go l.run(ctx, w)
	return l, nil
}

func (l *watchLog) run(ctx context.Context, w *watchtools.RetryWatcher) {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			l.end(ctx.Err())
			return
		case ev, ok := <-w.ResultChan():
			at := time.Now()
			if !ok {
				l.end(fmt.Errorf("watch closed"))
				return
			}
			if ev.Type == watch.Error {
				l.end(fmt.Errorf("watch error: %v", ev.Object))
				return
			}
			u, isU := ev.Object.(*unstructured.Unstructured)
			if !isU || ev.Type == watch.Bookmark {
				continue
			}
			l.record(l.keyOf(u), seen{at: at, obj: u, deleted: ev.Type == watch.Deleted})
		}
	}
}

func (l *watchLog) record(key string, s seen) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events[key] = append(l.events[key], s)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *watchLog) end(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// mark is the position after the last event of key; await looks from there.
func (l *watchLog) mark(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events[key])
}

// count is how many events were recorded for every key together.
func (l *watchLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, evs := range l.events {
		n += len(evs)
	}
	return n
}

// await returns the arrival time of the first event of key at or after position from that
// satisfies match, waiting for it at most timeout.
func (l *watchLog) await(ctx context.Context, key string, from int, timeout time.Duration, match func(seen) bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		l.mu.Lock()
		evs := l.events[key]
		for i := from; i < len(evs); i++ {
			if match(evs[i]) {
				l.mu.Unlock()
				return evs[i].at, nil
			}
		}
		from = len(evs)
		changed, err := l.changed, l.err
		l.mu.Unlock()
		if err != nil {
			return time.Time{}, fmt.Errorf("waiting for an event of %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("no matching event of %s within %s: %w", key, timeout, ctx.Err())
		case <-changed:
		}
	}
}
