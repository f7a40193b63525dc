package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// cacheWarmer starts, on every replica, the informers the pod webhook reads, and reports ready
// once they have synced. Without it a follower (which runs no controller) would start each
// informer on its first admission and answer that admission from an empty cache: a canary pod
// admitted without its labels.
type cacheWarmer struct {
	cache   cache.Cache
	objects []client.Object
	synced  chan struct{}
}

func newCacheWarmer(c cache.Cache, cloneSets bool) *cacheWarmer {
	objs := []client.Object{&appsv1.ReplicaSet{}, &appsv1.Deployment{}, &appsv1.StatefulSet{}, &rolloutsv1beta1.Rollout{}, &rolloutsv1alpha1.TrafficRouting{},
		trafficrouting.EntryIngressObject()}
	if cloneSets {
		objs = append(objs, trafficrouting.CloneSetKind.New())
	}
	return &cacheWarmer{cache: c, objects: objs, synced: make(chan struct{})}
}

// NeedLeaderElection: every replica serves the webhook, so every replica warms its cache.
func (w *cacheWarmer) NeedLeaderElection() bool { return false }

// Start gets each informer (which starts it) and waits for all of them to sync.
func (w *cacheWarmer) Start(ctx context.Context) error {
	for _, obj := range w.objects {
		if _, err := w.cache.GetInformer(ctx, obj); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("start the informer for %T: %w", obj, err)
		}
	}
	if !w.cache.WaitForCacheSync(ctx) {
		return nil // stopping
	}
	close(w.synced)
	<-ctx.Done()
	return nil
}

// Check is a readyz check: not ready until the webhook's informers have synced.
func (w *cacheWarmer) Check(_ *http.Request) error {
	select {
	case <-w.synced:
		return nil
	default:
		return errors.New("the caches the webhook reads have not synced yet")
	}
}

// webhookRegistration registers the pod webhook once the serving certificate exists. It runs on
// every replica (a runnable that does not say otherwise runs on the leader only, which would leave
// a follower unready and serving nothing).
type webhookRegistration struct {
	certsReady <-chan struct{}
	started    chan struct{}
	register   func()
}

// NeedLeaderElection: followers serve admissions too.
func (w *webhookRegistration) NeedLeaderElection() bool { return false }

// Start waits for the certificate, registers the handler and marks the webhook started.
func (w *webhookRegistration) Start(ctx context.Context) error {
	select {
	case <-w.certsReady:
	case <-ctx.Done():
		return nil
	}
	w.register()
	close(w.started)
	<-ctx.Done()
	return nil
}
