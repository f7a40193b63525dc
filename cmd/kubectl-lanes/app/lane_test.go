package app

import (
	"strings"
	"testing"

	"github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

func memberOf(name string, phase v1beta1.RolloutPhase, state v1beta1.CanaryStepState, pods ...corev1.Pod) laneops.Member {
	r := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Name: "rollout-" + name}}
	r.Spec.WorkloadRef = v1beta1.ObjectRef{Kind: "Deployment", Name: name}
	r.Status.Phase = phase
	if state != "" {
		r.Status.CanaryStatus = &v1beta1.CanaryStatus{CommonStatus: v1beta1.CommonStatus{CurrentStepState: state}}
	}
	return laneops.Member{Rollout: r, Pods: pods}
}

func lanePod(ready bool, labels map[string]string) corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}}
}

var gray = map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}

func state(members ...laneops.Member) *laneops.LaneState {
	lane := &trafficrouting.Lane{Tag: "gray", Dialects: []trafficrouting.Dialect{trafficrouting.DialectMSE, trafficrouting.DialectOpenSergo}}
	return &laneops.LaneState{TrafficRouting: &v1alpha1.TrafficRouting{Status: v1alpha1.TrafficRoutingStatus{Phase: v1alpha1.TrafficRoutingPhaseHealthy}}, Lane: lane, Members: members}
}

func TestTrace(t *testing.T) {
	st := state(
		memberOf("a", v1beta1.RolloutPhaseProgressing, v1beta1.CanaryStepStatePaused, lanePod(true, gray), lanePod(true, nil)),
		memberOf("b", v1beta1.RolloutPhaseHealthy, ""),
		memberOf("c", v1beta1.RolloutPhaseProgressing, v1beta1.CanaryStepStatePaused, lanePod(false, gray)),
	)
	if got := formatTrace(traceOf(st, []string{"a", "b", "c", "d"})); got != "a[gray] -> b[base] -> c[base] -> d[base]" {
		t.Errorf("trace = %q (a Ready lane pod makes gray; an unready one does not; a non-member is base)", got)
	}
	if got := formatTrace(traceOf(st, nil)); got != "a[gray] -> b[base] -> c[base]" {
		t.Errorf("default chain trace = %q", got)
	}
}

func TestJudge(t *testing.T) {
	paused := memberOf("a", v1beta1.RolloutPhaseProgressing, v1beta1.CanaryStepStatePaused)
	upgrading := memberOf("c", v1beta1.RolloutPhaseProgressing, v1beta1.CanaryStepStateUpgrade)
	healthy := memberOf("b", v1beta1.RolloutPhaseHealthy, v1beta1.CanaryStepStateCompleted)
	cancelling := memberOf("a", v1beta1.RolloutPhaseProgressing, v1beta1.CanaryStepStatePaused)
	cancelling.Rollout.Status.Conditions = []v1beta1.RolloutCondition{{Type: v1beta1.RolloutConditionProgressing, Reason: v1alpha1.ProgressingReasonCancelling}}
	disabled := memberOf("d", v1beta1.RolloutPhaseDisabled, "")

	tests := map[string]struct {
		st         *laneops.LaneState
		goal       laneops.Goal
		start      laneops.ReleaseStart
		wantDone   bool
		wantFailed string
		wantNotYet string
	}{
		"paused: all releasing members paused":    {st: state(paused, healthy), goal: laneops.GoalPaused, wantDone: true},
		"paused: one still upgrading":             {st: state(paused, upgrading), goal: laneops.GoalPaused, wantNotYet: "rollout-c is StepUpgrade"},
		"paused: nothing releasing yet":           {st: state(healthy), goal: laneops.GoalPaused, wantNotYet: "no member is releasing"},
		"completed: a member still progressing":   {st: state(paused, healthy), goal: laneops.GoalCompleted, wantNotYet: "rollout-a is Progressing/StepPaused"},
		"completed: every member healthy":         {st: state(healthy), goal: laneops.GoalCompleted, wantDone: true},
		"completed: a release was rolled back":    {st: state(cancelling), goal: laneops.GoalCompleted, start: laneops.ReleaseStart{"rollout-a": true}, wantFailed: "rollout-a was rolled back"},
		"healthy: a rollback is what we wait for": {st: state(cancelling), goal: laneops.GoalHealthy, start: laneops.ReleaseStart{"rollout-a": true}, wantNotYet: "rollout-a is Progressing"},
		"any goal: a disabled member fails":       {st: state(disabled), goal: laneops.GoalHealthy, wantFailed: "rollout-d is Disabled"},
		"completed: cancelling not seen at start": {st: state(cancelling), goal: laneops.GoalCompleted, start: laneops.ReleaseStart{}, wantNotYet: "rollout-a is Progressing"},
		"no members": {st: state(), goal: laneops.GoalHealthy, wantNotYet: "no member Rollouts"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := laneops.Judge(tc.st, tc.goal, tc.start)
			if v.Done != tc.wantDone {
				t.Errorf("done = %v, want %v (%+v)", v.Done, tc.wantDone, v)
			}
			if !strings.Contains(v.Failed, tc.wantFailed) || (tc.wantFailed == "" && v.Failed != "") {
				t.Errorf("failed = %q, want %q", v.Failed, tc.wantFailed)
			}
			if !strings.Contains(v.NotYet, tc.wantNotYet) || (tc.wantNotYet == "" && v.NotYet != "") {
				t.Errorf("notYet = %q, want %q", v.NotYet, tc.wantNotYet)
			}
		})
	}
}
