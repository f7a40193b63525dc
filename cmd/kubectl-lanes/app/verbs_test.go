package app

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// fakeGetter serves the lane verbs a fake client in namespace shop with the built-in defaults.
type fakeGetter struct{ c client.Client }

func (f fakeGetter) Client() (client.Client, error) { return f.c, nil }
func (f fakeGetter) Namespace() (string, error)     { return "shop", nil }
func (fakeGetter) LaneDefaults(context.Context, client.Reader) (trafficrouting.Defaults, string, error) {
	return trafficrouting.DefaultDefaults(), "defaults: built-in (test)", nil
}

// laneObjects is lane mse-traffic in shop: rollout-a paused at step 1 of 2 with one Ready gray
// pod, rollout-b Healthy, and a TrafficRouting with no members.
func laneObjects() []client.Object {
	tr := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "mse-traffic"}}
	tr.Spec.ObjectRef = []rolloutsv1alpha1.TrafficRoutingRef{{Service: "spring-cloud-a", Ingress: &rolloutsv1alpha1.IngressTrafficRouting{Name: "spring-cloud-a"}}}
	tr.Spec.Strategy.RequestHeaderModifier = &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: "gray"}}}
	tr.Status.Phase = rolloutsv1alpha1.TrafficRoutingPhaseHealthy
	empty := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "empty"}}
	empty.Spec.Strategy.RequestHeaderModifier = &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: "blue"}}}
	objs := []client.Object{tr, empty}
	for _, name := range []string{"a", "b"} {
		sel := map[string]string{"app": "spring-cloud-" + name}
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "spring-cloud-" + name}}
		dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: sel}
		r := &rolloutsv1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollout-" + name,
			Annotations: map[string]string{trafficrouting.TrafficRoutingAnnotation: "mse-traffic"}}}
		r.Spec.WorkloadRef = rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name}
		r.Spec.Strategy.Canary = &rolloutsv1beta1.CanaryStrategy{Steps: []rolloutsv1beta1.CanaryStep{{}, {}}}
		r.Status.Phase = rolloutsv1beta1.RolloutPhaseHealthy
		if name == "a" {
			r.Status.Phase = rolloutsv1beta1.RolloutPhaseProgressing
			r.Status.CanaryStatus = &rolloutsv1beta1.CanaryStatus{CommonStatus: rolloutsv1beta1.CommonStatus{CurrentStepIndex: 1, CurrentStepState: rolloutsv1beta1.CanaryStepStatePaused},
				CanaryReplicas: 1, CanaryReadyReplicas: 1}
			pod := lanePod(true, map[string]string{"app": dep.Name, "alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"})
			pod.Namespace, pod.Name = "shop", "spring-cloud-a-gray"
			objs = append(objs, &pod)
		}
		objs = append(objs, dep, r)
	}
	return objs
}

// runVerb runs a command line on the fake lane with ctx and returns its streams and exit code.
func runVerb(ctx context.Context, t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(laneObjects()...).WithStatusSubresource(&rolloutsv1beta1.Rollout{}).Build()
	var out, errOut bytes.Buffer
	root := newRoot(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, fakeGetter{c})
	code = execute(ctx, root, args, &errOut)
	return out.String(), errOut.String(), code
}

func TestLaneVerbsOutput(t *testing.T) {
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantOut    string
		wantErrOut string
	}{
		"list": {
			args: []string{"list"},
			wantOut: "LANE         PHASE    TAG   HEADER     MEMBERS\n" +
				"empty        -        blue  x-mse-tag  -\n" +
				"mse-traffic  Healthy  gray  x-mse-tag  rollout-a,rollout-b\n",
			wantErrOut: "defaults: built-in (test)\n",
		},
		"list json": {
			args: []string{"list", "-o", "json"},
			wantOut: `[
  {
    "name": "empty",
    "phase": "",
    "tag": "blue",
    "header": "x-mse-tag",
    "members": null
  },
  {
    "name": "mse-traffic",
    "phase": "Healthy",
    "tag": "gray",
    "header": "x-mse-tag",
    "members": [
      "rollout-a",
      "rollout-b"
    ]
  }
]
`,
			wantErrOut: "defaults: built-in (test)\n",
		},
		"status": {
			args: []string{"status", "mse-traffic"},
			wantOut: "Lane mse-traffic (tag gray): Healthy; entry: no canary Ingress\n" +
				"MEMBER     WORKLOAD                   STYLE      PHASE        STEP  STATE       CANARY  LANE PODS\n" +
				"rollout-a  Deployment/spring-cloud-a  partition  Progressing  1/2   StepPaused  1/1     1\n" +
				"rollout-b  Deployment/spring-cloud-b  partition  Healthy      -/2   -           0/0     0\n",
			wantErrOut: "defaults: built-in (test)\n",
		},
		"trace": {
			args:       []string{"trace", "mse-traffic", "--chain", "spring-cloud-a,spring-cloud-b,spring-cloud-c"},
			wantOut:    "spring-cloud-a[gray] -> spring-cloud-b[base] -> spring-cloud-c[base]\n",
			wantErrOut: "defaults: built-in (test)\n",
		},
		"trace yaml": {
			args:       []string{"trace", "mse-traffic", "-o", "yaml"},
			wantOut:    "- name: spring-cloud-a\n  readyLanePods: 1\n  version: gray\n- name: spring-cloud-b\n  readyLanePods: 0\n  version: base\n",
			wantErrOut: "defaults: built-in (test)\n",
		},
		"approve a member that is not paused": {
			args:       []string{"approve", "mse-traffic", "--member", "rollout-b"},
			wantCode:   1,
			wantOut:    "rollout-b: not approved, it is not paused (phase Healthy, state -)\n",
			wantErrOut: "defaults: built-in (test)\nerror: nothing approved: none of rollout-b is paused\n",
		},
		"approve a non-member": {
			args:       []string{"approve", "mse-traffic", "--member", "rollout-z"},
			wantCode:   1,
			wantErrOut: "defaults: built-in (test)\nerror: rollout-z is not a member of lane mse-traffic (members: rollout-a, rollout-b)\n",
		},
		"approve a lane with nothing paused": {
			args:       []string{"approve", "empty"},
			wantCode:   1,
			wantErrOut: "defaults: built-in (test)\nerror: nothing approved: no member of lane empty is paused\n",
		},
		"rollback a lane with nothing releasing": {
			args:       []string{"rollback", "empty"},
			wantCode:   1,
			wantErrOut: "defaults: built-in (test)\nerror: nothing rolled back: no member of lane empty is releasing\n",
		},
		"wait for paused": {
			args:       []string{"wait", "mse-traffic", "--for=paused"},
			wantOut:    "lane mse-traffic is paused\n",
			wantErrOut: "defaults: built-in (test)\n",
		},
		"wait times out": {
			args:       []string{"wait", "mse-traffic", "--for=completed", "--timeout=1ms", "--interval=1h"},
			wantCode:   2,
			wantErrOut: "defaults: built-in (test)\nerror: timed out after 1ms waiting for lane mse-traffic to be completed: rollout-a is Progressing/StepPaused\n",
		},
		"wait for a lane that does not exist": {
			args:       []string{"wait", "nothing", "--for=healthy"},
			wantCode:   1,
			wantErrOut: "defaults: built-in (test)\nerror: lane not found: no TrafficRouting \"nothing\" in namespace \"shop\" (kubectl lanes list shows the lanes)\n",
		},
		"wait for an unknown goal": {
			args:       []string{"wait", "mse-traffic", "--for=done"},
			wantCode:   1,
			wantErrOut: "error: --for \"done\": use paused, completed or healthy\n",
		},
		"list with an unknown output format, refused before the cluster is read": {
			args:       []string{"list", "-o", "table"},
			wantCode:   1,
			wantErrOut: "error: output format \"table\" is not supported; use -o json or -o yaml, or no -o for a table\n",
		},
		"trace with an unknown output format, refused before the cluster is read": {
			args:       []string{"trace", "mse-traffic", "-o", "wide"},
			wantCode:   1,
			wantErrOut: "error: output format \"wide\" is not supported; use -o json or -o yaml, or no -o for a table\n",
		},
		"wait with a zero interval": {
			args:       []string{"wait", "mse-traffic", "--for=completed", "--timeout=1ms", "--interval=0"},
			wantCode:   1,
			wantErrOut: "error: --interval 0s: use a positive duration, such as 2s\n",
		},
		"status -w with a negative interval": {
			args:       []string{"status", "mse-traffic", "-w", "--interval=-1s"},
			wantCode:   1,
			wantErrOut: "error: --interval -1s: use a positive duration, such as 2s\n",
		},
		"status of two lanes": {
			args:       []string{"status", "a", "b"},
			wantCode:   1,
			wantErrOut: "error: name exactly one lane (a TrafficRouting); kubectl lanes list shows them\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := runVerb(t.Context(), t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			if diff := cmp.Diff(tc.wantOut, out); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErrOut, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
