package app

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The manager's cache refuses every typed Pod read and informer, and serves metadata-only pods
// and other kinds.
func TestManagerCacheRefusesTypedPods(t *testing.T) {
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := &metadataOnlyPods{Cache: &informertest.FakeInformers{Scheme: scheme}}
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "ns", Name: "p"}
	refused := map[string]error{
		"Get":         c.Get(ctx, key, &corev1.Pod{}),
		"List":        c.List(ctx, &corev1.PodList{}),
		"IndexField":  c.IndexField(ctx, &corev1.Pod{}, "f", func(client.Object) []string { return nil }),
		"GetInformer": func() error { _, err := c.GetInformer(ctx, &corev1.Pod{}); return err }(),
		"GetInformerForKind": func() error {
			_, err := c.GetInformerForKind(ctx, corev1.SchemeGroupVersion.WithKind("Pod"))
			return err
		}(),
	}
	for name, err := range refused {
		if !errors.Is(err, errTypedPod) {
			t.Errorf("%s of a typed Pod: got %v, want errTypedPod", name, err)
		}
	}
	// (The fake informers know no metadata-only kind: only the guard's answer is checked.)
	if _, err := c.GetInformer(ctx, trafficrouting.PodMetadata()); errors.Is(err, errTypedPod) {
		t.Errorf("metadata-only Pod informer refused as a typed Pod")
	}
	if err := c.List(ctx, trafficrouting.PodMetadataList()); errors.Is(err, errTypedPod) {
		t.Errorf("metadata-only Pod list refused as a typed Pod read")
	}
	if _, err := c.GetInformer(ctx, &corev1.Service{}); err != nil {
		t.Errorf("Service informer refused: %v", err)
	}
	if err := c.List(ctx, &corev1.ServiceList{}); errors.Is(err, errTypedPod) {
		t.Errorf("Service list refused as a typed Pod read")
	}
}
