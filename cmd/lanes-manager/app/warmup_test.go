package app

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

func TestCacheWarmerIsReadyOnlyAfterSync(t *testing.T) {
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	cs := &unstructured.Unstructured{}
	cs.SetGroupVersionKind(trafficrouting.CloneSetGVK)
	scheme.AddKnownTypeWithName(trafficrouting.CloneSetGVK, cs)
	informers := &informertest.FakeInformers{Scheme: scheme}
	w := newCacheWarmer(informers, true)
	if err := w.Check(nil); err == nil {
		t.Fatal("ready before the informers were started")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	deadline := time.After(10 * time.Second)
	for w.Check(nil) != nil {
		select {
		case err := <-done:
			t.Fatalf("warm-up stopped: %v", err)
		case <-deadline:
			t.Fatal("not ready 10 s after the informers synced")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if len(informers.InformersByGVK) != len(w.objects) {
		t.Errorf("%d informers started, want one per object the webhook reads (%d)", len(informers.InformersByGVK), len(w.objects))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
