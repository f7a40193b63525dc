package trafficrouting

import (
	"context"
	"fmt"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RolloutWorkloadFieldIndex is the name controller-runtime gives, in the Rollouts' informer, to
// the field index RolloutWorkloadIndex that lanes-manager registers (IndexField): "field:" and
// the field's name, keyed "<namespace>/<value>". Indexers.Rollouts is read through it, and every
// Rollout it returns is checked against the namespace and the workload asked for, so a
// controller-runtime that keyed it otherwise would only send the read to Resolver.Reader.
const RolloutWorkloadFieldIndex = "field:" + RolloutWorkloadIndex

func rolloutFieldKey(namespace, kind, name string) string {
	return namespace + "/" + workloadKey(kind, name)
}

// Indexers are the stores of the informers Decide reads, read directly: a read is a map lookup
// that returns the informer's own object, without the cache reader's per-read work (finding the
// kind and its informer, copying the struct into the caller's object, building a NotFound error,
// copying a list's items). What a read returns is the cached object itself: it must never be
// written (see Resolver). A nil field means that kind is read through Resolver.Reader, as every
// kind is when Resolver.Indexers is nil.
type Indexers struct {
	ReplicaSets  toolscache.Indexer
	Deployments  toolscache.Indexer
	StatefulSets toolscache.Indexer
	// CloneSets holds unstructured objects, as the manager caches CloneSets.
	CloneSets toolscache.Indexer
	// Rollouts must carry RolloutWorkloadFieldIndex.
	Rollouts        toolscache.Indexer
	TrafficRoutings toolscache.Indexer
	// EntryIngresses holds Ingresses as metadata (EntryIngressObject).
	EntryIngresses toolscache.Indexer
}

// workload is the indexer of a workload kind's objects.
func (x Indexers) workload(k WorkloadKind) toolscache.Indexer {
	switch k {
	case DeploymentKind:
		return x.Deployments
	case StatefulSetKind:
		return x.StatefulSets
	case CloneSetKind:
		return x.CloneSets
	}
	return nil
}

// indexerOf is an informer's store, when the informer exposes it. controller-runtime's informers
// for one or all namespaces do; those it keeps per namespace (a kind cached from several chosen
// namespaces) do not, and the kind is then read through the cache reader.
func indexerOf(inf cache.Informer) toolscache.Indexer {
	if s, ok := inf.(interface{ GetIndexer() toolscache.Indexer }); ok {
		return s.GetIndexer()
	}
	return nil
}

// IndexersFrom gets from c (creating them, so call it before the cache starts, and after the
// field index RolloutWorkloadIndex is registered) the informers of the kinds Decide reads and
// returns their stores. cloneSets: whether CloneSets are served (their informer is created only
// then). viaReader names the kinds whose informer does not expose its store, or (Rollouts) whose
// store lacks RolloutWorkloadFieldIndex: the Resolver reads those through its Reader.
func IndexersFrom(ctx context.Context, c cache.Informers, cloneSets bool) (x *Indexers, viaReader []string, err error) {
	x = &Indexers{}
	type kind struct {
		obj client.Object
		dst *toolscache.Indexer
	}
	kinds := []kind{
		{&appsv1.ReplicaSet{}, &x.ReplicaSets},
		{&appsv1.Deployment{}, &x.Deployments},
		{&appsv1.StatefulSet{}, &x.StatefulSets},
		{&rolloutsv1beta1.Rollout{}, &x.Rollouts},
		{&rolloutsv1alpha1.TrafficRouting{}, &x.TrafficRoutings},
		{EntryIngressObject(), &x.EntryIngresses},
	}
	if cloneSets {
		kinds = append(kinds, kind{CloneSetKind.New(), &x.CloneSets})
	}
	for _, k := range kinds {
		inf, err := c.GetInformer(ctx, k.obj)
		if err != nil {
			return nil, nil, fmt.Errorf("get the informer of %T: %w", k.obj, err)
		}
		idx := indexerOf(inf)
		if idx != nil && k.dst == &x.Rollouts {
			if _, ok := idx.GetIndexers()[RolloutWorkloadFieldIndex]; !ok {
				idx = nil
			}
		}
		if idx == nil {
			viaReader = append(viaReader, fmt.Sprintf("%T", k.obj))
			continue
		}
		*k.dst = idx
	}
	return x, viaReader, nil
}

// fromIndexer is the object idx holds as namespace/name; nil when it holds none.
func fromIndexer(idx toolscache.Indexer, namespace, name string) (client.Object, error) {
	item, ok, err := idx.GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("read %s/%s from the cache: %w", namespace, name, err)
	}
	if !ok {
		return nil, nil
	}
	obj, isObj := item.(client.Object)
	if !isObj {
		return nil, fmt.Errorf("the cache holds a %T as %s/%s, not a Kubernetes object", item, namespace, name)
	}
	return obj, nil
}

// readCached reads namespace/name of one kind: from idx when it is set (the informer's own object,
// shared with it), else through r into a shell from pool, which is then lent (the caller gives it
// back with pool.put once it is done reading). Nil when there is no such object; the caller says
// what it was reading in a failure's message.
func readCached[T any, P interface {
	*T
	client.Object
}](ctx context.Context, r client.Reader, idx toolscache.Indexer, pool *shells[T], namespace, name string) (obj P, lent bool, err error) {
	if idx != nil {
		o, err := fromIndexer(idx, namespace, name)
		if err != nil || o == nil {
			return nil, false, err
		}
		typed, ok := o.(P)
		if !ok {
			return nil, false, fmt.Errorf("the cache holds a %T as %s/%s, not a %T", o, namespace, name, typed)
		}
		return typed, false, nil
	}
	shell := P(pool.get())
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, shell, client.UnsafeDisableDeepCopy); err != nil {
		pool.put(shell)
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return shell, true, nil
}
