package app

import (
	"context"
	"testing"
	"time"

	"github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

func TestCacheWarmerIsReadyOnlyAfterSync(t *testing.T) {
	// The fake informers look types up in a scheme; the metadata-only Ingress is registered under
	// the Ingress kind here, which the full scheme already gives to networking/v1's Go type.
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, v1alpha1.AddToScheme, v1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	scheme.AddKnownTypeWithName(trafficrouting.EntryIngressObject().GroupVersionKind(), &metav1.PartialObjectMetadata{})
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
