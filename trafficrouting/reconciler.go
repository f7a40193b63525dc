package trafficrouting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// LabelObserver receives what the reconciler did (metrics).
type LabelObserver interface {
	LabelsApplied(n int)
	LabelsRemoved(n int)
	ReconcileError()
}

// PodLabelReconciler keeps every pod's lane labels as the lane decides: it labels lane pods the
// webhook missed (created while it was unreachable), and removes the labels it manages from pods
// whose revision became stable or whose Rollout left the lane or was deleted. It is level-based:
// each reconcile computes the pod's labels from scratch.
type PodLabelReconciler struct {
	Client   client.Client
	Resolver *Resolver
	Recorder record.EventRecorder
	Observer LabelObserver
	// Scope limits the namespaces whose pods are labelled to those the pod webhook serves
	// (nil: every namespace).
	Scope *NamespaceScope
}

// Reconcile brings one pod's lane labels to what its lane decides.
func (r *PodLabelReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx).WithName("lane-labels")
	meta := PodMetadata()
	if err := r.Client.Get(ctx, req.NamespacedName, meta); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	// The resolver reads a pod's metadata only, as the webhook does with the pod it admits.
	pod := &corev1.Pod{ObjectMeta: meta.ObjectMeta}
	if !pod.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	if serves, err := r.Scope.Serves(ctx, pod.Namespace); err != nil || !serves {
		return reconcile.Result{}, err
	}
	decision, err := r.Resolver.Decide(ctx, &pod.ObjectMeta)
	if err != nil {
		r.Observer.ReconcileError()
		return reconcile.Result{}, fmt.Errorf("decide lane labels of pod %s: %w", req, err)
	}
	if decision.Problem != nil && !errors.Is(decision.Problem, ErrLaneNotFound) {
		// A misconfigured lane leaves its pods as they are; the webhook and the lane's Events say
		// why. A lane that does not exist (its TrafficRouting deleted mid-release) has no labels:
		// the pod gets back to what it was without one.
		return reconcile.Result{}, nil
	}
	change := LabelChanges(pod.Labels, pod.Annotations, decision.Labels)
	if change.IsEmpty(pod.Annotations) {
		return reconcile.Result{}, nil
	}
	if err := r.Client.Patch(ctx, meta, client.RawPatch(types.MergePatchType, mergePatch(change))); err != nil {
		r.Observer.ReconcileError()
		return reconcile.Result{}, fmt.Errorf("patch lane labels of pod %s: %w", req, client.IgnoreNotFound(err))
	}
	r.Observer.LabelsApplied(len(change.Set))
	r.Observer.LabelsRemoved(len(change.Remove))
	log.Info("lane labels reconciled", "pod", req, "set", change.Set, "remove", change.Remove)
	if decision.Rollout != nil {
		r.Recorder.Eventf(decision.Rollout, corev1.EventTypeNormal, "LaneLabels", "pod %s: %s", pod.Name, describe(change))
	}
	return reconcile.Result{}, nil
}

func describe(c LabelChange) string {
	var parts []string
	for k, v := range c.Set {
		if slices.Contains(c.Restored, k) {
			parts = append(parts, fmt.Sprintf("restored %s=%s", k, v))
		} else {
			parts = append(parts, fmt.Sprintf("set %s=%s", k, v))
		}
	}
	for _, k := range c.Remove {
		parts = append(parts, "removed "+k)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "lane bookkeeping updated"
	}
	return strings.Join(parts, ", ")
}

// mergePatch builds the JSON merge patch of a label change (null deletes a key).
func mergePatch(c LabelChange) []byte {
	lbls := map[string]any{}
	for k, v := range c.Set {
		lbls[k] = v
	}
	for _, k := range c.Remove {
		lbls[k] = nil
	}
	annotations := map[string]any{}
	for _, a := range c.Annotations() {
		if a.Remove {
			annotations[a.Key] = nil
		} else {
			annotations[a.Key] = a.Value
		}
	}
	patch := map[string]any{"metadata": map[string]any{"labels": lbls, "annotations": annotations}}
	b, _ := json.Marshal(patch) // maps of strings and nil always encode
	return b
}

// PodMetadata is an empty metadata-only Pod: how the label reconciler reads pods, through the
// manager's metadata informer (a Pod's labels, annotations, owners and deletion), so the cache
// holds no typed Pod.
func PodMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	return m
}

// PodMetadataList is an empty list of metadata-only Pods (PodMetadata).
func PodMetadataList() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	return l
}

// SetupWithManager registers the reconciler: pods are reconciled when they change, and all pods
// of a workload when its Rollout, its lane or its revisions change. Pods are watched and read as
// metadata only (PodMetadata).
func (r *PodLabelReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("lane-labels").
		For(&corev1.Pod{}, builder.OnlyMetadata).
		Watches(&rolloutsv1beta1.Rollout{}, handler.EnqueueRequestsFromMapFunc(r.podsOfRollout)).
		Watches(&rolloutsv1alpha1.TrafficRouting{}, handler.EnqueueRequestsFromMapFunc(r.podsOfLane)).
		// A workload's pods change role only when its revision markers change (a Deployment's
		// labels, a StatefulSet's or CloneSet's status revisions), and only a Rollout's workload
		// has lane pods: other changes of other workloads enqueue nothing.
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.podsOfMemberWorkload), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(r.podsOfMemberWorkload), builder.WithPredicates(revisionsChanged())).
		// A lane's entry Ingress takes part in resolving it (ResolveWithEntry).
		Watches(EntryIngressObject(), handler.EnqueueRequestsFromMapFunc(r.podsOfEntry), builder.WithPredicates(predicate.AnnotationChangedPredicate{})).
		// A namespace that enters the webhook's scope has its pods reconciled.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.podsOfNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{}))
	if r.Resolver.CloneSets {
		b = b.Watches(CloneSetKind.New(), handler.EnqueueRequestsFromMapFunc(r.podsOfMemberWorkload), builder.WithPredicates(revisionsChanged()))
	}
	return b.Complete(r)
}

// revisionsChanged passes creations, deletions and updates that change status.updateRevision or
// status.currentRevision (StatefulSets and CloneSets).
func revisionsChanged() predicate.Predicate {
	revisions := func(obj client.Object) [2]string {
		k, ok := WorkloadKindOf(obj)
		if !ok {
			return [2]string{}
		}
		update, current := k.Revisions(obj)
		return [2]string{update, current}
	}
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return revisions(e.ObjectOld) != revisions(e.ObjectNew)
	}}
}

// podsOfMemberWorkload enqueues the pods of a workload only when a Rollout releases it (or, for
// Kruise's extra canary Deployment, the stable Deployment it names).
func (r *PodLabelReconciler) podsOfMemberWorkload(ctx context.Context, obj client.Object) []reconcile.Request {
	k, ok := WorkloadKindOf(obj)
	if !ok {
		return nil
	}
	kind, name := k.Kind(), obj.GetName()
	if stable := obj.GetLabels()[CanaryDeploymentLabel]; k == DeploymentKind && stable != "" {
		name = stable
	}
	list := &rolloutsv1beta1.RolloutList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{RolloutWorkloadIndex: workloadKey(kind, name)}); err != nil {
		logf.FromContext(ctx).Error(err, "list rollouts of workload", "kind", kind, "name", name)
		return nil
	}
	if len(list.Items) == 0 {
		return nil
	}
	return r.podsOfWorkload(ctx, obj)
}

func (r *PodLabelReconciler) podsOfNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.podsMatching(ctx, obj.GetName(), labels.Everything())
}

// podsOfEntry enqueues the pods of the lanes whose entry is this Ingress.
func (r *PodLabelReconciler) podsOfEntry(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &rolloutsv1alpha1.TrafficRoutingList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "list lanes of ingress", "ingress", obj.GetName())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		refs := list.Items[i].Spec.ObjectRef
		if len(refs) > 0 && refs[0].Ingress != nil && refs[0].Ingress.Name == obj.GetName() {
			reqs = append(reqs, r.podsOfLane(ctx, &list.Items[i])...)
		}
	}
	return reqs
}

func (r *PodLabelReconciler) podsOfLane(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &rolloutsv1beta1.RolloutList{}
	if err := r.Client.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "list rollouts of lane", "lane", obj.GetName())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Annotations[TrafficRoutingAnnotation] == obj.GetName() {
			reqs = append(reqs, r.podsOfRollout(ctx, &list.Items[i])...)
		}
	}
	return reqs
}

func (r *PodLabelReconciler) podsOfRollout(ctx context.Context, obj client.Object) []reconcile.Request {
	rollout, ok := obj.(*rolloutsv1beta1.Rollout)
	if !ok {
		return nil
	}
	ref := rollout.Spec.WorkloadRef
	k, ok := WorkloadKindNamed(ref.Kind)
	if !ok || (k.Optional() && !r.Resolver.CloneSets) {
		return nil
	}
	workload := k.New()
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: rollout.Namespace, Name: ref.Name}, workload); err != nil {
		return nil
	}
	reqs := r.podsOfWorkload(ctx, workload)
	if k == DeploymentKind {
		// Kruise's extra canary Deployments carry the stable Deployment's name in a label.
		canaries := &appsv1.DeploymentList{}
		if err := r.Client.List(ctx, canaries, client.InNamespace(rollout.Namespace), client.MatchingLabels{CanaryDeploymentLabel: ref.Name}); err == nil {
			for i := range canaries.Items {
				reqs = append(reqs, r.podsOfWorkload(ctx, &canaries.Items[i])...)
			}
		}
	}
	return reqs
}

func (r *PodLabelReconciler) podsOfWorkload(ctx context.Context, obj client.Object) []reconcile.Request {
	k, ok := WorkloadKindOf(obj)
	if !ok {
		return nil
	}
	selector, err := k.Selector(obj)
	if err != nil {
		return nil
	}
	if selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil || sel.Empty() {
		return nil
	}
	return r.podsMatching(ctx, obj.GetNamespace(), sel)
}

func (r *PodLabelReconciler) podsMatching(ctx context.Context, namespace string, sel labels.Selector) []reconcile.Request {
	pods := PodMetadataList()
	if err := r.Client.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		logf.FromContext(ctx).Error(err, "list pods of workload")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pods.Items))
	for i := range pods.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
	}
	return reqs
}
