package laneops

import (
	"fmt"
	"strings"

	"github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
)

// Goal is what a lane is waited for.
type Goal string

const (
	// GoalPaused: every releasing member is paused at a step.
	GoalPaused Goal = "paused"
	// GoalCompleted: every member is Healthy again after its release.
	GoalCompleted Goal = "completed"
	// GoalHealthy: every member and the TrafficRouting are Healthy.
	GoalHealthy Goal = "healthy"
)

// Verdict is one look at the lane: done, failed (with why), or not yet (with what is missing).
type Verdict struct {
	Done   bool
	Failed string
	NotYet string
}

// ReleaseStart remembers which members were releasing when the wait began.
type ReleaseStart map[string]bool

// StartOf records which members of st are releasing now.
func StartOf(st *LaneState) ReleaseStart {
	out := ReleaseStart{}
	for _, m := range st.Members {
		if m.Releasing() {
			out[m.Rollout.Name] = true
		}
	}
	return out
}

// RolledBack reports whether a member that was releasing when wait began was rolled back instead
// of completing. Kruise marks it in the Rollout's conditions: Progressing turns to reason
// Cancelling when the workload goes back to its stable revision, and a cancelled release ends
// with Succeeded=False.
func RolledBack(m Member, wasReleasing bool) bool {
	if !wasReleasing {
		return false
	}
	for _, c := range m.Rollout.Status.Conditions {
		switch {
		case c.Type == v1beta1.RolloutConditionProgressing && c.Reason == v1alpha1.ProgressingReasonCancelling:
			return true
		case c.Type == v1beta1.RolloutConditionSucceeded && c.Status == corev1.ConditionFalse && !m.Releasing():
			return true
		}
	}
	return false
}

// Judge decides how far the lane is from the goal; start says which members were releasing
// when the wait began (a rollback of one of them fails the paused and completed goals).
func Judge(st *LaneState, goal Goal, start ReleaseStart) Verdict {
	for _, m := range st.Members {
		switch m.Rollout.Status.Phase {
		case v1beta1.RolloutPhaseDisabled, v1beta1.RolloutPhaseDisabling, v1beta1.RolloutPhaseTerminating:
			return Verdict{Failed: fmt.Sprintf("member %s is %s", m.Rollout.Name, m.Rollout.Status.Phase)}
		}
		// Waiting for healthy is how a pipeline waits for a rollback to finish, so only the
		// other goals treat a rollback as a failure.
		if goal != GoalHealthy && RolledBack(m, start[m.Rollout.Name]) {
			return Verdict{Failed: fmt.Sprintf("member %s was rolled back: %s", m.Rollout.Name, m.Rollout.Status.Message)}
		}
	}
	if len(st.Members) == 0 {
		return Verdict{NotYet: "the lane has no member Rollouts"}
	}
	var missing []string
	switch goal {
	case GoalPaused:
		releasing := 0
		for _, m := range st.Members {
			if !m.Releasing() {
				continue
			}
			releasing++
			if m.StepState() != v1beta1.CanaryStepStatePaused {
				missing = append(missing, fmt.Sprintf("%s is %s", m.Rollout.Name, dash(string(m.StepState()))))
			}
		}
		if releasing == 0 {
			return Verdict{NotYet: "no member is releasing"}
		}
	case GoalCompleted, GoalHealthy:
		for _, m := range st.Members {
			if m.Rollout.Status.Phase != v1beta1.RolloutPhaseHealthy {
				missing = append(missing, fmt.Sprintf("%s is %s/%s", m.Rollout.Name, dash(string(m.Rollout.Status.Phase)), dash(string(m.StepState()))))
			}
		}
		if goal == GoalHealthy && st.TrafficRouting.Status.Phase != v1alpha1.TrafficRoutingPhaseHealthy {
			missing = append(missing, fmt.Sprintf("the lane is %s", dash(string(st.TrafficRouting.Status.Phase))))
		}
	}
	if len(missing) > 0 {
		return Verdict{NotYet: strings.Join(missing, ", ")}
	}
	return Verdict{Done: true}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
