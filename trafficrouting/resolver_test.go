package trafficrouting

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

const ns = "shop"

func scheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func owner(kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, Controller: ptr.To(true), UID: "u"}}
}

func deployment(name string, labels map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

func replicaSet(name, deploy string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owner("Deployment", deploy)}}
}

func rollout(name, kind, workload, lane string, phase rolloutsv1beta1.RolloutPhase) *rolloutsv1beta1.Rollout {
	r := &rolloutsv1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if lane != "" {
		r.Annotations = map[string]string{TrafficRoutingAnnotation: lane}
	}
	r.Spec.WorkloadRef = rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: kind, Name: workload}
	r.Status.Phase = phase
	return r
}

func lane(name string, annotations map[string]string, tag string) *rolloutsv1alpha1.TrafficRouting {
	tr := trafficRouting(annotations)
	tr.Namespace, tr.Name = ns, name
	if tag != "" {
		tr.Spec.Strategy.RequestHeaderModifier = trafficRouting(nil, header("x-mse-tag", tag)).Spec.Strategy.RequestHeaderModifier
	}
	return tr
}

func pod(labels map[string]string, owners []metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "p-", Labels: labels, OwnerReferences: owners}}
}

func resolver(t *testing.T, objs ...client.Object) *Resolver {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cached(objs...)...).
		WithIndex(&rolloutsv1beta1.Rollout{}, RolloutWorkloadIndex, IndexRolloutWorkload).Build()
	return &Resolver{Reader: c, Defaults: DefaultDefaults()}
}

var grayLabels = map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}

func TestDecide(t *testing.T) {
	partition := []client.Object{
		deployment("a", map[string]string{StableRevisionLabel: "old"}),
		replicaSet("a-new", "a"), replicaSet("a-old", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing),
		lane("mse-traffic", nil, "gray"),
	}
	tests := map[string]struct {
		objs        []client.Object
		pod         *corev1.Pod
		wantRole    Role
		wantLabels  map[string]string
		wantRollout string
		wantProblem string
	}{
		"partition Deployment canary pod": {
			objs: partition, pod: pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")),
			wantRole: RoleCanary, wantLabels: grayLabels, wantRollout: "rollout-a",
		},
		"partition Deployment stable pod": {
			objs: partition, pod: pod(map[string]string{"pod-template-hash": "old"}, owner("ReplicaSet", "a-old")),
			wantRole: RoleStable, wantLabels: map[string]string{}, wantRollout: "rollout-a",
		},
		"ReplicaSet not in the cache yet: Deployment from its name": {
			objs: []client.Object{deployment("a", map[string]string{StableRevisionLabel: "old"}),
				rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray")},
			pod:      pod(map[string]string{"pod-template-hash": "7f9c"}, owner("ReplicaSet", "a-7f9c")),
			wantRole: RoleCanary, wantLabels: grayLabels, wantRollout: "rollout-a",
		},
		"extra-workload canary Deployment": {
			objs: []client.Object{deployment("b-canary-x", map[string]string{CanaryDeploymentLabel: "b"}), replicaSet("b-canary-x-1", "b-canary-x"),
				rollout("rollout-b", "Deployment", "b", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray")},
			pod:      pod(map[string]string{"pod-template-hash": "1"}, owner("ReplicaSet", "b-canary-x-1")),
			wantRole: RoleCanary, wantLabels: grayLabels, wantRollout: "rollout-b",
		},
		"StatefulSet update revision": {
			objs: []client.Object{&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"}, Status: appsv1.StatefulSetStatus{UpdateRevision: "c-2", CurrentRevision: "c-1"}},
				rollout("rollout-c", "StatefulSet", "c", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "gray")},
			pod:      pod(map[string]string{"controller-revision-hash": "c-2"}, owner("StatefulSet", "c")),
			wantRole: RoleCanary, wantLabels: grayLabels, wantRollout: "rollout-c",
		},
		"Rollout not releasing: stable": {
			objs: []client.Object{deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"),
				rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseHealthy), lane("mse-traffic", nil, "gray")},
			pod:      pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")),
			wantRole: RoleStable, wantLabels: map[string]string{}, wantRollout: "rollout-a",
		},
		"Rollout in no lane": {
			objs: []client.Object{deployment("a", nil), replicaSet("a-new", "a"), rollout("rollout-a", "Deployment", "a", "", rolloutsv1beta1.RolloutPhaseProgressing)},
			pod:  pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")), wantRollout: "rollout-a",
		},
		"lane does not exist": {
			objs: []client.Object{deployment("a", nil), replicaSet("a-new", "a"), rollout("rollout-a", "Deployment", "a", "gone", rolloutsv1beta1.RolloutPhaseProgressing)},
			pod:  pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")), wantRollout: "rollout-a",
			wantProblem: "rollout rollout-a joins lane not found: trafficrouting shop/gone does not exist",
		},
		"lane without a tag": {
			objs: []client.Object{deployment("a", nil), replicaSet("a-new", "a"), rollout("rollout-a", "Deployment", "a", "mse-traffic", rolloutsv1beta1.RolloutPhaseProgressing), lane("mse-traffic", nil, "")},
			pod:  pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new")), wantRollout: "rollout-a",
			wantProblem: "the lane tag cannot be determined",
		},
		"pod without owner": {
			objs: partition, pod: pod(map[string]string{"app": "x"}, nil),
		},
		"Deployment without a Rollout": {
			objs: []client.Object{deployment("z", nil), replicaSet("z-1", "z")},
			pod:  pod(map[string]string{"pod-template-hash": "1"}, owner("ReplicaSet", "z-1")),
		},
	}
	for name, tc := range tests {
		for _, read := range []struct {
			how      string
			resolver func(*testing.T, ...client.Object) *Resolver
		}{{"through the reader", resolver}, {"from indexers", indexedResolver}} {
			t.Run(name+"/"+read.how, func(t *testing.T) {
				d, err := read.resolver(t, tc.objs...).Decide(t.Context(), &tc.pod.ObjectMeta)
				if err != nil {
					t.Fatal(err)
				}
				gotRollout := ""
				if d.Rollout != nil {
					gotRollout = d.Rollout.Name
				}
				if gotRollout != tc.wantRollout {
					t.Errorf("rollout %q, want %q", gotRollout, tc.wantRollout)
				}
				if d.Role != tc.wantRole {
					t.Errorf("role %q, want %q", d.Role, tc.wantRole)
				}
				if diff := cmp.Diff(tc.wantLabels, d.Labels); diff != "" {
					t.Errorf("labels (-want +got):\n%s", diff)
				}
				switch {
				case tc.wantProblem == "" && d.Problem != nil:
					t.Errorf("unexpected problem: %v", d.Problem)
				case tc.wantProblem != "" && (d.Problem == nil || !strings.Contains(d.Problem.Error(), tc.wantProblem)):
					t.Errorf("problem %v, want one containing %q", d.Problem, tc.wantProblem)
				}
				if tc.wantProblem != "" && d.Lane != nil {
					t.Error("a broken lane must not be used")
				}
			})
		}
	}
}

func TestDecideNotFoundLaneIsTyped(t *testing.T) {
	r := resolver(t, deployment("a", nil), replicaSet("a-1", "a"), rollout("rollout-a", "Deployment", "a", "gone", rolloutsv1beta1.RolloutPhaseProgressing))
	d, err := r.Decide(t.Context(), &pod(map[string]string{"pod-template-hash": "1"}, owner("ReplicaSet", "a-1")).ObjectMeta)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(d.Problem, ErrLaneNotFound) {
		t.Errorf("problem %v is not ErrLaneNotFound", d.Problem)
	}
}

func TestDecideRefusesToChangeASelectorLabel(t *testing.T) {
	// The Deployment's selector matches on ASM_TRAFFIC_TAG: base. Giving a canary pod the lane's
	// value would make its ReplicaSet let it go and create another, without end.
	d := deployment("a", map[string]string{StableRevisionLabel: "old"})
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a", LabelASM: BaseTag}}
	asm := lane("asm-traffic", map[string]string{AnnotationDialects: "asm", AnnotationBaseLabels: "true"}, "gray")
	r := resolver(t, d, replicaSet("a-new", "a"), replicaSet("a-old", "a"), asm,
		rollout("rollout-a", "Deployment", "a", "asm-traffic", rolloutsv1beta1.RolloutPhaseProgressing))
	canary := pod(map[string]string{"app": "a", LabelASM: BaseTag, "pod-template-hash": "new"}, owner("ReplicaSet", "a-new"))
	got, err := r.Decide(t.Context(), &canary.ObjectMeta)
	if err != nil {
		t.Fatal(err)
	}
	if got.Problem == nil || !errors.Is(got.Problem, ErrMisconfigured) || !strings.Contains(got.Problem.Error(), "whose selector matches on ASM_TRAFFIC_TAG") || len(got.Labels) != 0 {
		t.Errorf("canary: problem %v, labels %v; want a refusal naming the selector and no labels", got.Problem, got.Labels)
	}
	// A stable pod already carries the value the lane wants: nothing changes, nothing refused.
	stable := pod(map[string]string{"app": "a", LabelASM: BaseTag, "pod-template-hash": "old"}, owner("ReplicaSet", "a-old"))
	if got, err := r.Decide(t.Context(), &stable.ObjectMeta); err != nil || got.Problem != nil || got.Labels[LabelASM] != BaseTag {
		t.Errorf("stable: %+v, %v; want the base label and no problem", got, err)
	}
}

func TestCheckSelectorNamesTheFirstKeyInOrder(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", LabelMSE: "gray"}}}
	sel := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "a", LabelMSE: "gray", LabelLanes: "base"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelASM, Operator: metav1.LabelSelectorOpExists}},
	}
	// LabelMSE keeps its value; LabelLanes and LabelASM would change, and ASM_TRAFFIC_TAG sorts first.
	desired := map[string]string{LabelMSE: "gray", LabelLanes: "gray", LabelASM: "gray", "unselected": "x"}
	err := checkSelector(&pod.ObjectMeta, "Deployment", "a", sel, desired)
	if err == nil || !strings.Contains(err.Error(), "would change "+LabelASM+" on") {
		t.Errorf("error %v, want one naming %s", err, LabelASM)
	}
	if err := checkSelector(&pod.ObjectMeta, "Deployment", "a", sel, map[string]string{LabelMSE: "gray", "unselected": "x"}); err != nil {
		t.Errorf("no selected label changes: error %v", err)
	}
	if err := checkSelector(&pod.ObjectMeta, "Deployment", "a", nil, desired); err != nil {
		t.Errorf("no selector: error %v", err)
	}
}
