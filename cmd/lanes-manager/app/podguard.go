package app

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// errTypedPod is what the manager's cache answers a typed Pod read with.
var errTypedPod = errors.New("lanes-manager's cache holds pods as metadata only: read them as metav1.PartialObjectMetadata (trafficrouting.PodMetadata), or typed from the API reader or a cache of their own")

// metadataOnlyPods is the manager's cache with typed Pods refused: a typed Pod informer would
// share the metadata informer's configuration (controller-runtime keys it by kind) and hold every
// pod of the cluster as a typed object, the memory the metadata informer saves.
type metadataOnlyPods struct {
	cache.Cache
}

// newManagerCache is the manager's NewCache: cache.New, guarded by metadataOnlyPods.
func newManagerCache(cfg *rest.Config, opts cache.Options) (cache.Cache, error) {
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("create the manager's cache: %w", err)
	}
	return &metadataOnlyPods{Cache: c}, nil
}

func typedPod(obj any) bool {
	switch obj.(type) {
	case *corev1.Pod, *corev1.PodList:
		return true
	}
	return false
}

func (c *metadataOnlyPods) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if typedPod(obj) {
		return errTypedPod
	}
	return c.Cache.Get(ctx, key, obj, opts...)
}

func (c *metadataOnlyPods) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if typedPod(list) {
		return errTypedPod
	}
	return c.Cache.List(ctx, list, opts...)
}

func (c *metadataOnlyPods) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	if typedPod(obj) {
		return nil, errTypedPod
	}
	return c.Cache.GetInformer(ctx, obj, opts...)
}

func (c *metadataOnlyPods) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	if gvk == corev1.SchemeGroupVersion.WithKind("Pod") {
		return nil, errTypedPod // a kind is always read typed
	}
	return c.Cache.GetInformerForKind(ctx, gvk, opts...)
}

func (c *metadataOnlyPods) IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	if typedPod(obj) {
		return errTypedPod
	}
	return c.Cache.IndexField(ctx, obj, field, extract)
}
