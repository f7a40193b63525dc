package trafficrouting

import (
	"context"
	"errors"
	"slices"
	"sync"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
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
	uid     types.UID
	version string
	// entry is the entry Ingress's resourceVersion; hasEntry is false when no Ingress was
	// checked.
	entry         string
	hasEntry      bool
	defaults      Defaults
	lane          *resolvedLane
	misconfigured error
}

// resolvedLane is a resolved lane with the labels of each role, computed once and shared by
// every decision that reads it: read it, never write to it.
type resolvedLane struct {
	lane           Lane
	canary, stable map[string]string
}

func newResolvedLane(l Lane) *resolvedLane {
	return &resolvedLane{lane: l, canary: l.DesiredLabels(RoleCanary), stable: l.DesiredLabels(RoleStable)}
}

// labels are the lane labels of a role, Lane.DesiredLabels computed once: shared.
func (l *resolvedLane) labels(role Role) map[string]string {
	switch role {
	case RoleCanary:
		return l.canary
	case RoleStable:
		return l.stable
	}
	return nil
}

// resolve is ResolveWithEntry's result for tr (nil with the error it returns), remembered.
// Objects without resourceVersions (as in fakes and tests) and failures to read are never
// remembered: they go to ResolveWithEntry.
func (m *laneMemo) resolve(ctx context.Context, r *Resolver, tr *rolloutsv1alpha1.TrafficRouting) (*resolvedLane, error) {
	if tr.ResourceVersion == "" {
		return resolveUnremembered(ctx, r, tr)
	}
	ing, err := r.entryIngress(ctx, tr)
	if err != nil || (ing != nil && ing.ResourceVersion == "") {
		// ResolveWithEntry says which error comes first (a misconfigured lane or the read).
		return resolveUnremembered(ctx, r, tr)
	}
	var entry string
	if ing != nil {
		entry = ing.ResourceVersion
	}
	key := types.NamespacedName{Namespace: tr.Namespace, Name: tr.Name}
	if got, ok := m.get(key); ok && got.uid == tr.UID && got.version == tr.ResourceVersion && got.hasEntry == (ing != nil) && got.entry == entry && sameDefaults(got.defaults, r.Defaults) {
		return got.lane, got.misconfigured
	}
	lane, err := Resolve(tr, r.Defaults)
	if err == nil {
		lane, err = checkEntry(tr, lane, r.Defaults, ing)
	}
	if err != nil && !errors.Is(err, ErrMisconfigured) {
		return nil, err
	}
	var resolved *resolvedLane
	if err == nil {
		resolved = newResolvedLane(lane)
	}
	d := r.Defaults
	d.Dialects = slices.Clone(d.Dialects)
	m.put(key, memoLane{uid: tr.UID, version: tr.ResourceVersion, entry: entry, hasEntry: ing != nil, defaults: d, lane: resolved, misconfigured: err})
	return resolved, err
}

func resolveUnremembered(ctx context.Context, r *Resolver, tr *rolloutsv1alpha1.TrafficRouting) (*resolvedLane, error) {
	lane, err := ResolveWithEntry(ctx, r.Reader, tr, r.Defaults)
	if err != nil {
		return nil, err
	}
	return newResolvedLane(lane), nil
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
