// Package laneops operates a whole lane through the API server: it loads a lane (its
// TrafficRouting, resolved as lanes-manager resolves it, its member Rollouts and their pods),
// approves a paused member so that the approval survives Kruise v0.6.2 overwriting its status,
// rolls a releasing member back to its stable revision per workload kind, and judges how far a
// lane is from a goal (paused, completed, healthy). kubectl lanes and the e2e framework use it.
package laneops

import (
	"context"
	"errors"
	"fmt"
	"sort"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// LaneState is everything the lane verbs read about one lane.
type LaneState struct {
	TrafficRouting *rolloutsv1alpha1.TrafficRouting
	// Lane is nil when the TrafficRouting is misconfigured (LaneErr says why).
	Lane    *trafficrouting.Lane
	LaneErr error
	Members []Member
}

// Member is one Rollout of the lane and its workload's pods.
type Member struct {
	Rollout *rolloutsv1beta1.Rollout
	Pods    []corev1.Pod
	// Selector selects the workload's pods (nil when the workload is missing).
	Selector labels.Selector
}

// ErrLaneNotFound is returned when the TrafficRouting does not exist.
var ErrLaneNotFound = errors.New("lane not found")

// Load reads a lane: its TrafficRouting, resolved with the defaults d as lanes-manager
// resolves it (ResolveWithEntry), its member Rollouts (annotated
// rollouts.kruise.io/trafficrouting: <lane>) and their workloads' pods.
func Load(ctx context.Context, c client.Client, namespace, name string, d trafficrouting.Defaults) (*LaneState, error) {
	return LoadReadingPods(ctx, c, c, namespace, name, d)
}

// LoadReadingPods is Load with the members' pods read through pods: lanes-manager's lane
// analysis passes its API reader, since the manager's cache keeps pods as metadata only (no
// readiness).
func LoadReadingPods(ctx context.Context, c client.Client, pods client.Reader, namespace, name string, d trafficrouting.Defaults) (*LaneState, error) {
	tr := &rolloutsv1alpha1.TrafficRouting{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, tr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: no TrafficRouting %q in namespace %q (kubectl lanes list shows the lanes)", ErrLaneNotFound, name, namespace)
		}
		return nil, fmt.Errorf("read trafficrouting %s/%s: %w", namespace, name, err)
	}
	st := &LaneState{TrafficRouting: tr}
	lane, err := trafficrouting.ResolveWithEntry(ctx, c, tr, d)
	switch {
	case errors.Is(err, trafficrouting.ErrMisconfigured):
		st.LaneErr = err
	case err != nil:
		return nil, err
	default:
		st.Lane = &lane
	}
	rollouts := &rolloutsv1beta1.RolloutList{}
	if err := c.List(ctx, rollouts, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list rollouts in %s: %w", namespace, err)
	}
	sort.Slice(rollouts.Items, func(i, j int) bool { return rollouts.Items[i].Name < rollouts.Items[j].Name })
	for i := range rollouts.Items {
		r := &rollouts.Items[i]
		if r.Annotations[trafficrouting.TrafficRoutingAnnotation] != name {
			continue
		}
		m := Member{Rollout: r}
		sel, err := workloadSelector(ctx, c, r)
		if err != nil {
			return nil, err
		}
		if sel != nil {
			m.Selector = sel
			list := &corev1.PodList{}
			if err := pods.List(ctx, list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
				return nil, fmt.Errorf("list pods of %s: %w", r.Name, err)
			}
			m.Pods = list.Items
		}
		st.Members = append(st.Members, m)
	}
	return st, nil
}

// workloadSelector returns the pod selector of the Rollout's workload, nil if it is missing.
func workloadSelector(ctx context.Context, c client.Client, r *rolloutsv1beta1.Rollout) (labels.Selector, error) {
	ref := r.Spec.WorkloadRef
	k, ok := trafficrouting.WorkloadKindNamed(ref.Kind)
	if !ok {
		return nil, nil
	}
	w := k.New()
	if err := c.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: ref.Name}, w); err != nil {
		return nil, workloadNotFound(err, r)
	}
	sel, err := k.Selector(w)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", r.Name, err)
	}
	if sel == nil {
		return nil, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("selector of %s %s: %w", ref.Kind, ref.Name, err)
	}
	return s, nil
}

func workloadNotFound(err error, r *rolloutsv1beta1.Rollout) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return fmt.Errorf("read %s %s of rollout %s: %w", r.Spec.WorkloadRef.Kind, r.Spec.WorkloadRef.Name, r.Name, err)
}

// StepState is the member's canary step state ("" when it has no canary status).
func (m Member) StepState() rolloutsv1beta1.CanaryStepState {
	if m.Rollout.Status.CanaryStatus == nil {
		return ""
	}
	return m.Rollout.Status.CanaryStatus.CurrentStepState
}

// Releasing reports whether the member is in a release (trafficrouting.Releasing).
func (m Member) Releasing() bool {
	return trafficrouting.Releasing(m.Rollout)
}

// ReadyLanePods counts the member's Ready pods that carry all of the lane's canary labels.
func (m Member) ReadyLanePods(lane *trafficrouting.Lane) int {
	if lane == nil {
		return 0
	}
	want := lane.CanaryLabels()
	n := 0
	for _, p := range m.Pods {
		if !p.DeletionTimestamp.IsZero() || !podReady(p) {
			continue
		}
		ok := len(want) > 0
		for k, v := range want {
			if p.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			n++
		}
	}
	return n
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Style names the member's rollout style.
func (m Member) Style() string {
	switch m.Rollout.Spec.WorkloadRef.Kind {
	case "Deployment":
		if m.Rollout.Spec.Strategy.Canary != nil && m.Rollout.Spec.Strategy.Canary.EnableExtraWorkloadForCanary {
			return "extra-workload"
		}
		return "partition"
	case "StatefulSet":
		return "statefulset"
	case "CloneSet":
		return "cloneset"
	}
	return m.Rollout.Spec.WorkloadRef.Kind
}
