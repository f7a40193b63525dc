//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// The traffic scenarios run the chain A -> B -> C of the lane demo (examples/lane-demo): every
// pod is a real server run by the pod runner, each hop calls the next through istiod (proxyless
// gRPC), and the requests come in through Traefik or as a mesh client.

// Ports of every demo hop: HTTP for the gateway, gRPC for the mesh.
const (
	demoHTTPPort = 20001
	demoGRPCPort = 20002
)

// chain is the seed 002 call chain.
var chain = []string{"spring-cloud-a", "spring-cloud-b", "spring-cloud-c"}

// demoImage is the lane demo's image at version v (the pod runner runs any image named
// lane-demo).
func demoImage(v string) string { return "kruise-lanes/lane-demo:" + v }

// demoDeployment is a Deployment of the lane demo as a user would write it for a real cluster:
// the lane comes from the pod's own labels (downward API volume), the pod's IP and namespace from
// the downward API, the downstream is the next Service through xDS (Istio's proxyless gRPC
// injection, annotation inject.istio.io/templates: grpc-agent).
func demoDeployment(ns, name, version, downstream, laneLabel string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	env := []corev1.EnvVar{
		{Name: "NAME", Value: name},
		{Name: "VERSION", Value: version},
		{Name: "FORMAT", Value: "lane-version"},
		{Name: "LANE_LABEL", Value: laneLabel},
		{Name: "PODINFO_LABELS", Value: "/etc/podinfo/labels"},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "HTTP_ADDR", Value: fmt.Sprintf("$(POD_IP):%d", demoHTTPPort)},
		{Name: "GRPC_ADDR", Value: fmt.Sprintf("$(POD_IP):%d", demoGRPCPort)},
	}
	if downstream != "" {
		// A new pod's first call waits for its first xDS discovery; kwok makes a pod Ready
		// without a readiness probe, so DOWNSTREAM_TIMEOUT leaves room for a busy istiod.
		env = append(env,
			corev1.EnvVar{Name: "DOWNSTREAM", Value: fmt.Sprintf("xds:///%s.$(POD_NAMESPACE).svc.cluster.local:%d", downstream, demoGRPCPort)},
			corev1.EnvVar{Name: "DOWNSTREAM_TIMEOUT", Value: "5s"})
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"inject.istio.io/templates": "grpc-agent"}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](3),
					Containers: []corev1.Container{{
						Name:  name,
						Image: demoImage(version),
						Env:   env,
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: demoHTTPPort},
							{Name: "grpc", ContainerPort: demoGRPCPort},
						},
						VolumeMounts: []corev1.VolumeMount{{Name: "podinfo", MountPath: "/etc/podinfo"}},
					}},
					Volumes: []corev1.Volume{{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
						Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}},
					}}}},
				},
			},
		},
	}
}

// demoService is the Service of one hop: HTTP for the gateway, gRPC (by name) for the mesh.
func demoService(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: demoHTTPPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(demoHTTPPort)},
				{Name: "grpc", Port: demoGRPCPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(demoGRPCPort), AppProtocol: ptr.To("grpc")},
			},
		},
	}
}

// stepsRollout is a v1beta1 Rollout of the Deployment name in the lane "lane", partition style,
// with one paused step per entry of replicas.
func stepsRollout(ns, lane, name string, replicas ...intstr.IntOrString) *rolloutsv1beta1.Rollout {
	steps := make([]rolloutsv1beta1.CanaryStep, 0, len(replicas))
	for i := range replicas {
		steps = append(steps, rolloutsv1beta1.CanaryStep{Replicas: &replicas[i], Pause: rolloutsv1beta1.RolloutPause{}})
	}
	return &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rollout-" + name, Annotations: map[string]string{rolloutsv1alpha1.TrafficRoutingAnnotation: lane}},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Strategy:    rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{Steps: steps}},
		},
	}
}

// deployChain creates the Services, Deployments (2 pods each) and Rollouts of A -> B -> C at
// v1 and waits until every Rollout is Healthy and every Deployment available. steps gives the
// Rollout steps of each hop (default: one pod, then 100%).
func deployChain(t *testing.T, ns, lane, laneLabel string, steps map[string][]intstr.IntOrString) {
	t.Helper()
	ctx := t.Context()
	for i, name := range chain {
		down := ""
		if i+1 < len(chain) {
			down = chain[i+1]
		}
		s := steps[name]
		if len(s) == 0 {
			s = []intstr.IntOrString{intstr.FromInt32(1), intstr.FromString("100%")}
		}
		for _, obj := range []client.Object{demoService(ns, name), demoDeployment(ns, name, "v1", down, laneLabel, 2), stepsRollout(ns, lane, name, s...)} {
			if err := cluster.Client.Create(ctx, obj); err != nil {
				t.Fatalf("creating %T %s: %v", obj, name, err)
			}
		}
	}
	for _, name := range chain {
		if _, err := framework.WaitForRollout(ctx, cluster.Client, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForDeploymentAvailable(ctx, cluster.Client, client.ObjectKey{Namespace: ns, Name: name}, stepTimeout); err != nil {
			t.Fatal(err)
		}
	}
}

// releaseVersion starts a release of hop name: its template moves to the demo image and VERSION
// of version (what `kubectl set image` plus `kubectl set env` does).
func releaseVersion(t *testing.T, ns, name, version string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := cluster.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		ctr := &d.Spec.Template.Spec.Containers[0]
		ctr.Image = demoImage(version)
		for i := range ctr.Env {
			if ctr.Env[i].Name == "VERSION" {
				ctr.Env[i].Value = version
			}
		}
		return cluster.Client.Update(t.Context(), d)
	})
	if err != nil {
		t.Fatalf("releasing %s %s: %v", name, version, err)
	}
}

// waitPaused waits until the Rollout of each hop is paused at step with want Ready pods per image.
func waitPaused(t *testing.T, ns string, step int32, want map[string]map[string]int) {
	t.Helper()
	for name, images := range want {
		if _, err := framework.WaitForRollout(t.Context(), cluster.Client, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, stepTimeout, fmt.Sprintf("to pause at step %d", step), framework.RolloutPausedAt(step)); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForReadyPods(t.Context(), cluster.Client, ns, map[string]string{"app": name}, stepTimeout, images); err != nil {
			t.Fatal(err)
		}
	}
}

// answer is the reply of the chain when each hop answers from the given lane and version
// ("lane/version"), e.g. answer("gray/v2", "base/v1", "gray/v2") =
// "spring-cloud-a[gray](v2) -> spring-cloud-b[base](v1) -> spring-cloud-c[gray](v2)".
func answer(hops ...string) string {
	parts := make([]string, len(chain))
	for i, name := range chain {
		lane, version, _ := strings.Cut(hops[i], "/")
		parts[i] = name + "[" + lane + "](" + version + ")"
	}
	return strings.Join(parts, " -> ")
}

// traceLine is what `kubectl lanes trace` prints for the chain in the given lanes.
func traceLine(lanes ...string) string {
	parts := make([]string, len(chain))
	for i, name := range chain {
		parts[i] = name + "[" + lanes[i] + "]"
	}
	return strings.Join(parts, " -> ")
}

// Answers of the whole chain on base before and after a release of A and C.
var (
	allBaseV1 = answer("base/v1", "base/v1", "base/v1")
	allBaseV2 = answer("base/v2", "base/v1", "base/v2")
)

// expectAnswers waits (up to stepTimeout) until send gets want 5 times in a row, then checks that
// 20 more requests all get it too, and returns how long the wait took.
func expectAnswers(t *testing.T, what string, send framework.Sender, want string) time.Duration {
	t.Helper()
	took, err := framework.WaitForAnswers(t.Context(), stepTimeout, what+": "+want, send, 5, func(b string) bool { return b == want })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range framework.Sample(t.Context(), send, 20) {
		if r.Failed() || r.Body != want {
			t.Fatalf("%s: after %d answers %q in a row, got %s", what, 5, want, r)
		}
	}
	return took
}

// readyPodsWithImage returns the Ready, not deleting pods of app=name on the given image.
func readyPodsWithImage(ctx context.Context, t *testing.T, ns, name, image string) []corev1.Pod {
	t.Helper()
	var out []corev1.Pod
	for _, p := range podsByImage(ctx, t, ns, name)[image] {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				out = append(out, p)
			}
		}
	}
	return out
}

// setPodReady writes the pod's Ready condition (what a failing or passing readiness probe makes
// the kubelet write).
func setPodReady(t *testing.T, pod *corev1.Pod, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := &corev1.Pod{}
		if err := cluster.Client.Get(t.Context(), client.ObjectKeyFromObject(pod), p); err != nil {
			return err
		}
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
				p.Status.Conditions[i].Status = status
				p.Status.Conditions[i].LastTransitionTime = metav1.Now()
			}
		}
		return cluster.Client.Status().Update(t.Context(), p)
	})
	if err != nil {
		t.Fatalf("setting pod %s Ready=%v: %v", pod.Name, ready, err)
	}
}

// approve approves the named members' Rollouts at their current step.
func approve(t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := framework.ApproveRollout(t.Context(), cluster.Client, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCompleted waits until the named members' Rollouts completed their release.
func waitCompleted(t *testing.T, ns string, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := framework.WaitForRollout(t.Context(), cluster.Client, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
			t.Fatal(err)
		}
	}
}

// xdsTarget is the mesh address of a hop's gRPC port.
func xdsTarget(ns, name string) string {
	return fmt.Sprintf("xds:///%s.%s.svc.cluster.local:%d", name, ns, demoGRPCPort)
}

// trafficScenario starts what every traffic scenario needs: lanes-manager with mesh routes,
// a namespace, istiod and the pod runner for the namespace. It returns the namespace.
func trafficScenario(t *testing.T) string {
	t.Helper()
	cluster.StartLanesManager(t, "--mesh-routes=true")
	ns := cluster.Namespace(t)
	cluster.Istiod(t)
	cluster.RunPods(t, ns)
	return ns
}

// releaseAC releases A and C from version from to version to and waits until both are paused at
// their first batch: one pod of each version Ready.
func releaseAC(t *testing.T, ns, from, to string) {
	t.Helper()
	a, c := chain[0], chain[2]
	releaseVersion(t, ns, a, to)
	releaseVersion(t, ns, c, to)
	waitPaused(t, ns, 1, map[string]map[string]int{
		a: {demoImage(from): 1, demoImage(to): 1},
		c: {demoImage(from): 1, demoImage(to): 1},
	})
}

// meshLoads returns the mesh client's senders to A, with and without the lane header, once both
// answer all base on v1, each with a steady request loop running (checked by the caller).
func meshLoads(t *testing.T, ns string) (lane, plain framework.Sender, laneLoad, plainLoad *framework.Load) {
	t.Helper()
	lane = cluster.MeshSender(t, xdsTarget(ns, chain[0]), map[string]string{"x-mse-tag": "gray"})
	plain = cluster.MeshSender(t, xdsTarget(ns, chain[0]), nil)
	expectAnswers(t, "before the release, with the lane header", lane, allBaseV1)
	expectAnswers(t, "before the release, without it", plain, allBaseV1)
	laneLoad = framework.StartLoad(t, "lane requests", lane, 20*time.Millisecond, 20000, 8*time.Minute)
	plainLoad = framework.StartLoad(t, "requests without the lane header", plain, 20*time.Millisecond, 20000, 8*time.Minute)
	return lane, plain, laneLoad, plainLoad
}
