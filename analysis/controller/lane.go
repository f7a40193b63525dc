package controller

import (
	"context"
	"fmt"
	"sort"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/analysis"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// LaneOf describes a loaded lane for a measurement: one hop per member, whose Service is the one
// the Rollout's traffic routing names, else the first Service (by name) of the namespace that
// selects the member's pods, else the workload's name.
func LaneOf(ctx context.Context, c client.Reader, st *laneops.LaneState) (analysis.Lane, error) {
	if st.Lane == nil {
		return analysis.Lane{}, fmt.Errorf("lane %s cannot be measured: %w", st.TrafficRouting.Name, st.LaneErr)
	}
	services := &corev1.ServiceList{}
	if err := c.List(ctx, services, client.InNamespace(st.TrafficRouting.Namespace)); err != nil {
		return analysis.Lane{}, fmt.Errorf("list services in %s: %w", st.TrafficRouting.Namespace, err)
	}
	sort.Slice(services.Items, func(i, j int) bool { return services.Items[i].Name < services.Items[j].Name })
	lane := analysis.Lane{Namespace: st.Lane.Namespace, Name: st.Lane.Name, Tag: st.Lane.Tag, Header: st.Lane.Header}
	for _, m := range st.Members {
		lane.Hops = append(lane.Hops, analysis.Hop{
			Service:   serviceOf(m, services.Items),
			Workload:  m.Rollout.Spec.WorkloadRef.Name,
			Rollout:   m.Rollout.Name,
			Releasing: m.Releasing() && m.Rollout.Status.CanaryStatus != nil,
		})
	}
	return lane, nil
}

// serviceOf names the Service a member serves.
func serviceOf(m laneops.Member, services []corev1.Service) string {
	if tr := m.Rollout.Spec.Strategy.GetTrafficRouting(); len(tr) > 0 && tr[0].Service != "" {
		return tr[0].Service
	}
	for _, s := range services {
		for _, p := range m.Pods {
			if trafficrouting.ServiceSelects(s.Spec.Selector, p.Labels) {
				return s.Name
			}
		}
	}
	return m.Rollout.Spec.WorkloadRef.Name
}

// passesThrough reports whether the member is "paused" at a last step of 100%, which Kruise
// v0.6.2 reports for a moment and then completes without waiting for an approval: no step to
// measure.
func passesThrough(m laneops.Member) bool {
	cs := m.Rollout.Status.CanaryStatus
	if cs == nil || m.Rollout.Spec.Strategy.Canary == nil {
		return false
	}
	steps := m.Rollout.Spec.Strategy.Canary.Steps
	if int(cs.CurrentStepIndex) != len(steps) || len(steps) == 0 {
		return false
	}
	r := steps[len(steps)-1].Replicas
	return r != nil && r.String() == "100%"
}

// pausedStep is the canary step the lane's releasing members are paused at (the highest, should
// they differ).
func pausedStep(st *laneops.LaneState) int32 {
	var step int32
	for _, m := range st.Members {
		if m.Releasing() && m.StepState() == rolloutsv1beta1.CanaryStepStatePaused && !passesThrough(m) && m.Rollout.Status.CanaryStatus.CurrentStepIndex > step {
			step = m.Rollout.Status.CanaryStatus.CurrentStepIndex
		}
	}
	return step
}
