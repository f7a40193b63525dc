package trafficrouting

import (
	"context"
	"errors"
	"slices"
	"sync"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxMemoLanes bounds the lane memo; past it the memo starts over (TrafficRoutings come and go).
const maxMemoLanes = 4096

// laneMemo remembers resolved lanes (ResolveWithEntry's result) by the versions of what resolution
// read: the TrafficRouting's UID and resourceVersion, its entry Ingress's resourceVersion (or its
// absence) and the defaults. Every admission of a lane's pods resolves the same unchanged
// TrafficRouting; this spares them validating it again. Any write to either object changes its
// resourceVersion, so a remembered lane is never stale. Its zero value is ready to use.
type laneMemo struct {
	mu    sync.Mutex
	lanes map[types.NamespacedName]memoLane
}

type memoLane struct {
	uid           types.UID
	version       string
	entry         string // "" when no Ingress was checked, else "v" + its resourceVersion
	defaults      Defaults
	lane          Lane
	misconfigured error
}

// resolve is ResolveWithEntry's result for tr, remembered. Objects without resourceVersions (as
// in fakes and tests) and failures to read are never remembered: they go to ResolveWithEntry.
func (m *laneMemo) resolve(ctx context.Context, r *Resolver, tr *rolloutsv1alpha1.TrafficRouting) (Lane, error) {
	if tr.ResourceVersion == "" {
		return ResolveWithEntry(ctx, r.Reader, tr, r.Defaults)
	}
	ing, err := r.entryIngress(ctx, tr)
	if err != nil || (ing != nil && ing.ResourceVersion == "") {
		// ResolveWithEntry says which error comes first (a misconfigured lane or the read).
		return ResolveWithEntry(ctx, r.Reader, tr, r.Defaults)
	}
	entry := entryVersion(ing)
	key := types.NamespacedName{Namespace: tr.Namespace, Name: tr.Name}
	if got, ok := m.get(key); ok && got.uid == tr.UID && got.version == tr.ResourceVersion && got.entry == entry && sameDefaults(got.defaults, r.Defaults) {
		return got.lane, got.misconfigured
	}
	lane, err := Resolve(tr, r.Defaults)
	if err == nil {
		lane, err = checkEntry(tr, lane, r.Defaults, ing)
	}
	if err != nil && !errors.Is(err, ErrMisconfigured) {
		return Lane{}, err
	}
	d := r.Defaults
	d.Dialects = slices.Clone(d.Dialects)
	m.put(key, memoLane{uid: tr.UID, version: tr.ResourceVersion, entry: entry, defaults: d, lane: lane, misconfigured: err})
	return lane, err
}

func entryVersion(ing *metav1.PartialObjectMetadata) string {
	if ing == nil {
		return ""
	}
	return "v" + ing.ResourceVersion
}

func sameDefaults(a, b Defaults) bool {
	return a.LaneHeader == b.LaneHeader && a.BaseLabels == b.BaseLabels && slices.Equal(a.Dialects, b.Dialects)
}

func (m *laneMemo) get(key types.NamespacedName) (memoLane, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.lanes[key]
	return l, ok
}

func (m *laneMemo) put(key types.NamespacedName, l memoLane) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lanes == nil || len(m.lanes) >= maxMemoLanes {
		m.lanes = map[types.NamespacedName]memoLane{}
	}
	m.lanes[key] = l
}
