package trafficrouting

import (
	"context"
	"slices"
	"strings"
	"testing"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// indexedReader is the Reader of indexedResolver: a Get fails the test (every kind is read from
// its indexer), and a List of Rollouts, which Decide makes only when the index finds none for a
// workload, is answered by the objects' own reader and counted.
type indexedReader struct {
	t     *testing.T
	inner client.Reader
	lists int
}

func (r *indexedReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.t.Errorf("read %T %s through the reader, not its indexer", obj, key)
	return nil
}

func (r *indexedReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	r.lists++
	return r.inner.List(ctx, list, opts...)
}

func newStore(indexers toolscache.Indexers) toolscache.Indexer {
	return toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, indexers)
}

// rolloutFieldIndex is the field index RolloutWorkloadIndex as controller-runtime adds it to the
// Rollouts' informer (IndexField): keyed by namespace and value, and again across namespaces.
func rolloutFieldIndex(key func(namespace, value string) []string) toolscache.Indexers {
	return toolscache.Indexers{RolloutWorkloadFieldIndex: func(obj any) ([]string, error) {
		o := obj.(client.Object)
		var keys []string
		for _, v := range IndexRolloutWorkload(o) {
			keys = append(keys, key(o.GetNamespace(), v)...)
		}
		return keys, nil
	}}
}

func controllerRuntimeKeys(namespace, value string) []string {
	return []string{namespace + "/" + value, "__all_namespaces/" + value}
}

// indexedResolver is resolver with every kind read from indexers holding objs as the manager's
// cache holds them (CacheTransform; Ingresses as metadata), and a Reader that must not be used.
func indexedResolver(t *testing.T, objs ...client.Object) *Resolver {
	t.Helper()
	x := &Indexers{
		ReplicaSets: newStore(nil), Deployments: newStore(nil), StatefulSets: newStore(nil), CloneSets: newStore(nil),
		Rollouts: newStore(rolloutFieldIndex(controllerRuntimeKeys)), TrafficRoutings: newStore(nil), EntryIngresses: newStore(nil),
	}
	for _, obj := range cached(objs...) {
		var store toolscache.Indexer
		switch o := obj.(type) {
		case *appsv1.ReplicaSet:
			store = x.ReplicaSets
		case *appsv1.Deployment:
			store = x.Deployments
		case *appsv1.StatefulSet:
			store = x.StatefulSets
		case *rolloutsv1beta1.Rollout:
			store = x.Rollouts
		case *rolloutsv1alpha1.TrafficRouting:
			store = x.TrafficRoutings
		case *networkingv1.Ingress:
			meta := EntryIngressObject()
			meta.ObjectMeta = o.ObjectMeta
			store, obj = x.EntryIngresses, meta
		default:
			t.Fatalf("no indexer for %T", obj)
		}
		if err := store.Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	return &Resolver{Reader: &indexedReader{t: t, inner: resolver(t, objs...).Reader}, Indexers: x, Defaults: DefaultDefaults()}
}

func TestDecideFromIndexersReturnsTheCachedRollout(t *testing.T) {
	r := indexedResolver(t, deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray"))
	d, err := r.Decide(t.Context(), &pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")).ObjectMeta)
	if err != nil {
		t.Fatal(err)
	}
	cachedRollout, _, _ := r.Indexers.Rollouts.GetByKey(ns + "/rollout-a")
	if d.Rollout == nil || d.Rollout != cachedRollout {
		t.Errorf("rollout %p, want the cached object %p (read without a copy)", d.Rollout, cachedRollout)
	}
	if lists := r.Reader.(*indexedReader).lists; lists != 0 {
		t.Errorf("%d lists through the reader for a Rollout the index holds", lists)
	}
}

func TestDecideFromIndexersSkipsADeletingRollout(t *testing.T) {
	deleting := rollout("rollout-old", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing)
	deleting.DeletionTimestamp = ptr.To(metav1.Now())
	deleting.Finalizers = []string{"kruise"}
	r := indexedResolver(t, deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"), deleting,
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray"))
	d, err := r.Decide(t.Context(), &pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")).ObjectMeta)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rollout == nil || d.Rollout.Name != "rollout-a" || d.Role != RoleCanary {
		t.Errorf("decision %+v, want rollout-a's canary", d)
	}
}

func TestDecideFromIndexersRefusesAnotherKindInAStore(t *testing.T) {
	r := indexedResolver(t, deployment("a", nil), rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing))
	// A store holding metadata where the Resolver expects typed ReplicaSets (a cache configured
	// another way) is an error that says so, never a panic or a silent miss.
	rs := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a-1"}}
	if err := r.Indexers.ReplicaSets.Add(rs); err != nil {
		t.Fatal(err)
	}
	_, err := r.Decide(t.Context(), &pod(map[string]string{"pod-template-hash": "1"}, owner("ReplicaSet", "a-1")).ObjectMeta)
	if err == nil || !strings.Contains(err.Error(), "the cache holds a *v1.PartialObjectMetadata as shop/a-1, not a *v1.ReplicaSet") {
		t.Errorf("error %v, want one naming what the cache holds", err)
	}
}

func TestLaneMemoReadsTheEntryIngressFromItsIndexer(t *testing.T) {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", ResourceVersion: "1"}}
	r := indexedResolver(t, ing)
	if l, err := r.lanes.resolve(t.Context(), r, versioned("u1", "1", "gray")); err != nil || l.lane.Tag != "gray" {
		t.Fatalf("lane %+v, %v; want gray", l, err)
	}
	// The Ingress now names a subset from another header: misconfigured, read from the indexer.
	changed := EntryIngressObject()
	changed.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "web", ResourceVersion: "2",
		Annotations: map[string]string{"mse.ingress.kubernetes.io/service-subset": "{{ x-other }}"}}
	if err := r.Indexers.EntryIngresses.Update(changed); err != nil {
		t.Fatal(err)
	}
	want, wantErr := checkEntry(versioned("u1", "1", "gray"), mustResolve(t, versioned("u1", "1", "gray")), r.Defaults, changed)
	got, gotErr := r.lanes.resolve(t.Context(), r, versioned("u1", "1", "gray"))
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) || (got == nil) != (wantErr != nil) || (got != nil && got.lane.Tag != want.Tag) {
		t.Errorf("after the Ingress changed: %+v, %v; want %+v, %v", got, gotErr, want, wantErr)
	}
}

func mustResolve(t *testing.T, tr *rolloutsv1alpha1.TrafficRouting) Lane {
	t.Helper()
	l, err := Resolve(tr, DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fakeInformers hands out client-go informers, as controller-runtime's cache does for one or all
// namespaces, except for the kinds in perNamespace, whose informer (like controller-runtime's for
// a kind cached from several chosen namespaces) does not expose its store.
type fakeInformers struct {
	cache.Informers
	scheme       *runtime.Scheme
	perNamespace map[string]bool
	noFieldIndex bool // the Rollouts' informer without RolloutWorkloadFieldIndex
	got          map[string]cache.Informer
}

type storelessInformer struct{ cache.Informer }

func (f *fakeInformers) GetInformer(_ context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		gvks, _, err := f.scheme.ObjectKinds(obj)
		if err != nil {
			return nil, err
		}
		kind = gvks[0].Kind
	}
	inf := toolscache.NewSharedIndexInformer(&toolscache.ListWatch{}, obj, 0, toolscache.Indexers{})
	if kind == "Rollout" && !f.noFieldIndex {
		if err := inf.AddIndexers(rolloutFieldIndex(controllerRuntimeKeys)); err != nil {
			return nil, err
		}
	}
	f.got[kind] = inf
	if f.perNamespace[kind] {
		return storelessInformer{inf}, nil
	}
	return inf, nil
}

func TestIndexersFromTakesTheInformersStores(t *testing.T) {
	s := scheme(t)
	f := &fakeInformers{scheme: s, perNamespace: map[string]bool{"ReplicaSet": true}, got: map[string]cache.Informer{}}
	x, viaReader, err := IndexersFrom(t.Context(), f, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(viaReader) != 1 || viaReader[0] != "*v1.ReplicaSet" {
		t.Errorf("kinds read through the reader: %q, want only *v1.ReplicaSet", viaReader)
	}
	store := func(kind string) toolscache.Indexer {
		inf, ok := f.got[kind]
		if !ok {
			t.Fatalf("no informer was got for %s", kind)
		}
		return inf.(toolscache.SharedIndexInformer).GetIndexer()
	}
	for kind, got := range map[string]toolscache.Indexer{
		"Deployment": x.Deployments, "StatefulSet": x.StatefulSets, "CloneSet": x.CloneSets, "Rollout": x.Rollouts,
		"TrafficRouting": x.TrafficRoutings, "Ingress": x.EntryIngresses,
	} {
		if got == nil || got != store(kind) {
			t.Errorf("%s: indexer %v, want the informer's store", kind, got)
		}
	}
	if x.ReplicaSets != nil {
		t.Error("ReplicaSets: an informer that does not expose its store must leave the kind to the reader")
	}

	// Without the field index (IndexField not called first), Rollouts go through the reader.
	f = &fakeInformers{scheme: s, noFieldIndex: true, got: map[string]cache.Informer{}}
	if x, viaReader, err := IndexersFrom(t.Context(), f, false); err != nil || x.Rollouts != nil || !slices.Contains(viaReader, "*v1beta1.Rollout") {
		t.Errorf("without the field index: rollouts %v, through the reader %q, %v; want the reader", x.Rollouts, viaReader, err)
	}

	f = &fakeInformers{scheme: s, got: map[string]cache.Informer{}}
	if x, _, err := IndexersFrom(t.Context(), f, false); err != nil || x.CloneSets != nil || f.got["CloneSet"] != nil {
		t.Errorf("without CloneSets: %+v, %v; want no CloneSet informer", x, err)
	}
}

func TestDecideReadsRolloutsThroughTheReaderWhereTheIndexIsKeyedOtherwise(t *testing.T) {
	objs := []client.Object{deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray")}
	canary := &pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")).ObjectMeta
	for name, keys := range map[string]func(namespace, value string) []string{
		// A controller-runtime that dropped the namespace from its keys: nothing is found under
		// "<namespace>/<value>", and the reader answers.
		"without the namespace": func(_, value string) []string { return []string{value} },
		// One that keyed every Rollout under the same value: what is found is checked.
		"one key for all": func(namespace, _ string) []string { return []string{namespace + "/Deployment/a"} },
	} {
		t.Run(name, func(t *testing.T) {
			other := rollout("rollout-b", "Deployment", "b", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing)
			r := indexedResolver(t, append(objs, other)...)
			rollouts := newStore(rolloutFieldIndex(keys))
			for _, o := range r.Indexers.Rollouts.List() {
				if err := rollouts.Add(o); err != nil {
					t.Fatal(err)
				}
			}
			r.Indexers.Rollouts = rollouts
			d, err := r.Decide(t.Context(), canary)
			if err != nil {
				t.Fatal(err)
			}
			if d.Rollout == nil || d.Rollout.Name != "rollout-a" || d.Role != RoleCanary {
				t.Errorf("decision %+v, want rollout-a's canary", d)
			}
		})
	}
}
