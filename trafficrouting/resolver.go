package trafficrouting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RolloutWorkloadIndex is the field index of Rollouts by the workload they release
// ("<Kind>/<name>"); the manager registers it with IndexRolloutWorkload.
const RolloutWorkloadIndex = "kruise-lanes.io/workload"

// IndexRolloutWorkload is the index function for RolloutWorkloadIndex.
func IndexRolloutWorkload(obj client.Object) []string {
	r, ok := obj.(*rolloutsv1beta1.Rollout)
	if !ok || r.Spec.WorkloadRef.Name == "" {
		return nil
	}
	return []string{workloadKey(r.Spec.WorkloadRef.Kind, r.Spec.WorkloadRef.Name)}
}

func workloadKey(kind, name string) string { return kind + "/" + name }

// Resolver answers, from a cache, which lane a pod belongs to and in which role.
//
// It reads without copies. From Indexers it gets the informer's own object; through Reader it
// asks for no deep copy (client.UnsafeDisableDeepCopy, per call: other readers of the same cache
// still get their own copies) and gets a shallow copy of the cached object, sharing its maps and
// slices with the informer. Either way what it read must never be written. Audited (keep it so):
// Decide and the functions it calls read names, owner references, labels, annotations,
// selectors, revisions, phases and the TrafficRouting's strategy, and build every result
// (Workload, Lane, labels, errors) from new values or from the lane memo's own; none writes to
// an object it read. What they hand out that is shared with the cache or the memo —
// Workload.Selector, Decision.Rollout, Decision.Lane, Decision.Labels — is read only: the
// selector and the labels are only looked up, and callers only name the Rollout in Events and
// logs. A reader that ignores the option (a live client, the fake client) copies as usual.
type Resolver struct {
	// Reader is the informer cache (or any client.Reader with RolloutWorkloadIndex). It is also
	// asked for the metadata of lanes' stable Ingresses (ResolveWithEntry).
	Reader client.Reader
	// Indexers, when set, are the stores of the same cache's informers: the kinds they hold are
	// read from them directly (lanes-manager sets them; see Indexers), the others through Reader.
	Indexers *Indexers
	// Defaults are the lane options a TrafficRouting does not set.
	Defaults Defaults
	// CloneSets is true where apps.kruise.io CloneSets are installed.
	CloneSets bool

	lanes laneMemo
	// What Decide reads into and drops before it returns (the ReplicaSet and the Deployment are
	// the largest objects of a decision, a pod template each; of the Rollouts listed, Decision
	// keeps one, which lives in the list's items, not in the list): lent, not allocated per
	// admission.
	replicaSets     shells[appsv1.ReplicaSet]
	deployments     shells[appsv1.Deployment]
	rolloutLists    shells[rolloutsv1beta1.RolloutList]
	trafficRoutings shells[rolloutsv1alpha1.TrafficRouting]
}

// shells lends empty objects to read into. An object is zeroed when it is given back, so a shell
// holds nothing of the cache while it waits; whatever was taken from it (strings, a selector the
// read allocated or shares with the cache) stays valid. Its zero value is ready to use.
type shells[T any] struct{ pool sync.Pool }

func (s *shells[T]) get() *T {
	if v, ok := s.pool.Get().(*T); ok {
		return v
	}
	return new(T)
}

func (s *shells[T]) put(v *T) {
	var zero T
	*v = zero
	s.pool.Put(v)
}

// Decision is what a pod should carry.
type Decision struct {
	// Rollout is the lane member releasing the pod's workload; nil if there is none. It shares
	// its maps and slices with the cache (see Resolver): read it, never write to it.
	Rollout *rolloutsv1beta1.Rollout
	// Lane is the member's resolved lane; nil when the pod is in no lane or the lane is broken.
	// It is shared with the Resolver's memo of lanes: read it, never write to it.
	Lane *Lane
	// Role of the pod in the lane.
	Role Role
	// Labels are the lane labels the pod must carry (empty: none), shared like Lane: read only.
	Labels map[string]string
	// Problem says why a member's lane cannot be used (misconfigured or missing TrafficRouting);
	// the pod is then left as it is.
	Problem error
}

// ErrLaneNotFound means a Rollout names a TrafficRouting that does not exist.
var ErrLaneNotFound = errors.New("lane not found")

// Decide finds the pod's workload, its Rollout, the Rollout's lane and the pod's role from the
// pod's metadata (all it reads of a pod; namespace, labels and owner references).
func (r *Resolver) Decide(ctx context.Context, pod *metav1.ObjectMeta) (Decision, error) {
	kind, name, w, err := r.workloadOf(ctx, pod)
	if err != nil || kind == "" {
		return Decision{}, err
	}
	rollout, err := r.rolloutFor(ctx, pod.Namespace, kind, name)
	if err != nil || rollout == nil {
		return Decision{}, err
	}
	d := Decision{Rollout: rollout}
	laneName := rollout.Annotations[TrafficRoutingAnnotation]
	if laneName == "" {
		return d, nil
	}
	tr, lent, err := readCached(ctx, r.Reader, r.indexers().TrafficRoutings, &r.trafficRoutings, pod.Namespace, laneName)
	if err != nil {
		return Decision{}, fmt.Errorf("get trafficrouting %s/%s: %w", pod.Namespace, laneName, err)
	}
	if tr == nil {
		d.Problem = fmt.Errorf("rollout %s joins %w: trafficrouting %s/%s does not exist", rollout.Name, ErrLaneNotFound, pod.Namespace, laneName)
		return d, nil
	}
	if lent {
		defer r.trafficRoutings.put(tr)
	}
	lane, err := r.lanes.resolve(ctx, r, tr)
	if errors.Is(err, ErrMisconfigured) {
		d.Problem = err
		return d, nil
	}
	if err != nil {
		return Decision{}, err
	}
	d.Lane = &lane.lane
	d.Role = RoleOf(pod.Labels, w, Releasing(rollout))
	d.Labels = lane.labels(d.Role)
	if err := checkSelector(pod, kind, name, w.Selector, d.Labels); err != nil {
		d.Lane, d.Labels, d.Problem = nil, nil, fmt.Errorf("lane %s/%s is %w: %w", pod.Namespace, laneName, ErrMisconfigured, err)
	}
	return d, nil
}

// checkSelector refuses to change a label the workload's selector matches on: the pod would stop
// matching its ReplicaSet (or StatefulSet, CloneSet), which would let it go and create another.
// Of several such labels it names the first in sorted order.
//
// It walks the selector's keys (a workload's selector has few, usually one) rather than the
// desired labels, so that the selector, which is the cached workload's, is read once.
func checkSelector(pod *metav1.ObjectMeta, kind, name string, sel *metav1.LabelSelector, desired map[string]string) error {
	if sel == nil || len(desired) == 0 {
		return nil
	}
	var changed []string
	check := func(k string) {
		if v, ok := desired[k]; ok && pod.Labels[k] != v && !slices.Contains(changed, k) {
			changed = append(changed, k)
		}
	}
	for k := range sel.MatchLabels {
		check(k)
	}
	for _, e := range sel.MatchExpressions {
		check(e.Key)
	}
	if len(changed) == 0 {
		return nil
	}
	k := slices.Min(changed)
	return fmt.Errorf("its labels would change %s on the pods of %s %s, whose selector matches on %s, so the pods would leave their workload: remove %s from the selector, or the dialect that sets it from %s",
		k, kind, name, k, k, AnnotationDialects)
}

// controllerOf is the owner reference marked as controller (metav1.GetControllerOfNoCopy, but on
// the references themselves: through metav1.Object the object they are read from would move to
// the heap).
func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if c := refs[i].Controller; c != nil && *c {
			return &refs[i]
		}
	}
	return nil
}

// workloadOf returns the kind and name of the workload a Rollout would name for this pod.
func (r *Resolver) workloadOf(ctx context.Context, pod *metav1.ObjectMeta) (kind, name string, wl Workload, err error) {
	owner := controllerOf(pod.OwnerReferences)
	if owner == nil {
		return "", "", Workload{}, nil
	}
	if owner.Kind == "ReplicaSet" && strings.HasPrefix(owner.APIVersion, appsv1.GroupName+"/") {
		return r.deploymentOf(ctx, pod, owner.Name)
	}
	// A StatefulSet or a CloneSet owns its pods itself (a Deployment, through its ReplicaSets).
	k, ok := WorkloadKindNamed(owner.Kind)
	if !ok || k == DeploymentKind || !k.Owns(*owner) || (k.Optional() && !r.CloneSets) {
		return "", "", Workload{}, nil
	}
	obj, err := r.workload(ctx, k, pod.Namespace, owner.Name)
	if err != nil || obj == nil {
		return "", "", Workload{}, err
	}
	update, current := k.Revisions(obj)
	sel, err := k.Selector(obj)
	if err != nil {
		sel = nil // a selector that does not decode protects no label
	}
	return k.Kind(), obj.GetName(), Workload{Kind: k.Kind(), UpdateRevision: update, CurrentRevision: current, Selector: sel}, nil
}

func (r *Resolver) deploymentOf(ctx context.Context, pod *metav1.ObjectMeta, rsName string) (kind, name string, wl Workload, err error) {
	// A pod may be admitted before its ReplicaSet reaches the cache: the ReplicaSet is then
	// named <deployment>-<pod-template-hash>, which names the Deployment without an API call.
	deployName := ""
	rs, lent, err := readCached(ctx, r.Reader, r.indexers().ReplicaSets, &r.replicaSets, pod.Namespace, rsName)
	switch {
	case err != nil:
		return "", "", Workload{}, fmt.Errorf("get replicaset %s/%s: %w", pod.Namespace, rsName, err)
	case rs != nil:
		if owner := controllerOf(rs.OwnerReferences); owner != nil && owner.Kind == "Deployment" {
			deployName = owner.Name
		}
		if lent {
			r.replicaSets.put(rs)
		}
	default:
		if hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; hash != "" {
			deployName = strings.TrimSuffix(rsName, "-"+hash)
			if deployName == rsName {
				deployName = ""
			}
		}
	}
	if deployName == "" {
		return "", "", Workload{}, nil
	}
	deploy, lent, err := readCached(ctx, r.Reader, r.indexers().Deployments, &r.deployments, pod.Namespace, deployName)
	if err != nil {
		return "", "", Workload{}, fmt.Errorf("get deployment %s/%s: %w", pod.Namespace, deployName, err)
	}
	if deploy == nil {
		return "", "", Workload{}, nil
	}
	if lent {
		defer r.deployments.put(deploy)
	}
	if stable := deploy.Labels[CanaryDeploymentLabel]; stable != "" {
		return "Deployment", stable, Workload{Kind: "Deployment", ExtraCanary: true, Selector: deploy.Spec.Selector}, nil
	}
	return "Deployment", deploy.Name, Workload{Kind: "Deployment", StableRevision: deploy.Labels[StableRevisionLabel], Selector: deploy.Spec.Selector}, nil
}

func (r *Resolver) rolloutFor(ctx context.Context, namespace, kind, name string) (*rolloutsv1beta1.Rollout, error) {
	if idx := r.indexers().Rollouts; idx != nil {
		items, err := idx.ByIndex(RolloutWorkloadFieldIndex, rolloutFieldKey(namespace, kind, name))
		if err != nil {
			return nil, fmt.Errorf("list rollouts of %s %s/%s: %w", kind, namespace, name, err)
		}
		for _, item := range items {
			ro, ok := item.(*rolloutsv1beta1.Rollout)
			if !ok {
				return nil, fmt.Errorf("list rollouts of %s %s/%s: the cache holds a %T among them", kind, namespace, name, item)
			}
			if ro.Namespace == namespace && ro.Spec.WorkloadRef.Kind == kind && ro.Spec.WorkloadRef.Name == name && ro.DeletionTimestamp.IsZero() {
				return ro, nil
			}
		}
		// None found: the reader says so for certain (a workload no Rollout releases, or an
		// index keyed otherwise than RolloutWorkloadFieldIndex expects).
	}
	list := r.rolloutLists.get()
	defer r.rolloutLists.put(list)
	if err := r.Reader.List(ctx, list, client.InNamespace(namespace), client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector(RolloutWorkloadIndex, workloadKey(kind, name))}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list rollouts of %s %s/%s: %w", kind, namespace, name, err)
	}
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp.IsZero() {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// workload reads a StatefulSet or a CloneSet (nil when there is none): from its indexer when the
// Resolver has one, else through Reader.
func (r *Resolver) workload(ctx context.Context, k WorkloadKind, namespace, name string) (client.Object, error) {
	if idx := r.indexers().workload(k); idx != nil {
		obj, err := fromIndexer(idx, namespace, name)
		if err != nil {
			return nil, fmt.Errorf("get %s %s/%s: %w", strings.ToLower(k.Kind()), namespace, name, err)
		}
		return obj, nil
	}
	obj := k.New()
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, obj, client.UnsafeDisableDeepCopy); err != nil {
		return nil, ignoreNotFound(err, strings.ToLower(k.Kind()), namespace, name)
	}
	return obj, nil
}

// ignoreNotFound is nil for a NotFound error, else err with what was being read.
func ignoreNotFound(err error, kind, namespace, name string) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("get %s %s/%s: %w", kind, namespace, name, err)
}

// indexers are the Resolver's Indexers, none when it has none.
func (r *Resolver) indexers() Indexers {
	if r.Indexers == nil {
		return Indexers{}
	}
	return *r.Indexers
}
