//go:build e2e

package bench

import (
	"context"
	"fmt"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The lane every benchmark builds: requests with x-mse-tag: gray belong to it.
const (
	laneName   = "lane"
	laneTag    = "gray"
	laneHeader = "x-mse-tag"
	// unscheduled is a scheduler nobody runs: the benchmark's pods are never bound to a node, so
	// kwok never touches their status and only the benchmark writes their readiness.
	unscheduled = "lanes-bench-unscheduled"
	// createWorkers is how many objects are created at once while the lane is built.
	createWorkers = 8
)

// memberName is the name of member i's Service, Deployment and pods.
func memberName(i int) string { return fmt.Sprintf("svc-%03d", i) }

// laneFixture is a releasing lane of many members. Member i is a Service svc-i selecting
// app=svc-i, a Deployment svc-i (no replicas) whose template carries that label, a v1beta1 Rollout
// of it in the lane with status phase Progressing, and two pods the Service selects: a Ready base
// pod and a lane pod, the one whose readiness the benchmark flips.
type laneFixture struct {
	namespace string
	// lanePods[i] is member i's lane pod as last written.
	lanePods []*corev1.Pod
}

// buildLane creates a lane of n members on the mesh, entered through an MSE Ingress in front of the first member (the Ingress itself is not created:
// nothing in this suite reads it). Every lane pod starts without a Ready condition.
func buildLane(ctx context.Context, c client.Client, namespace string, mesh meshRoutes, n int) (*laneFixture, error) {
	tr := &rolloutsv1alpha1.TrafficRouting{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: laneName, Annotations: map[string]string{
			trafficrouting.AnnotationMesh: mesh.mesh, trafficrouting.AnnotationDialects: mesh.dialect,
		}},
		Spec: rolloutsv1alpha1.TrafficRoutingSpec{
			ObjectRef: []rolloutsv1alpha1.TrafficRoutingRef{{Service: memberName(0), Ingress: &rolloutsv1alpha1.IngressTrafficRouting{ClassType: "mse", Name: memberName(0)}}},
			Strategy: rolloutsv1alpha1.TrafficRoutingStrategy{
				Matches:               []rolloutsv1alpha1.HttpRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{{Name: "User-Agent", Value: "xiaoming"}}}},
				RequestHeaderModifier: &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: laneHeader, Value: laneTag}}},
			},
		},
	}
	if err := c.Create(ctx, tr); err != nil {
		return nil, fmt.Errorf("create trafficrouting %s/%s: %w", namespace, laneName, err)
	}
	f := &laneFixture{namespace: namespace, lanePods: make([]*corev1.Pod, n)}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(createWorkers)
	for i := range n {
		g.Go(func() error {
			pod, err := createMember(ctx, c, namespace, memberName(i), mesh.podLabel)
			f.lanePods[i] = pod
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return f, nil
}

// createMember creates one member and returns its lane pod.
func createMember(ctx context.Context, c client.Client, namespace, name, podLabel string) (*corev1.Pod, error) {
	labels := map[string]string{"app": name}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 20001, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(20001)}},
		},
	}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(name)},
		},
	}
	rollout := &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "rollout-" + name, Annotations: map[string]string{trafficrouting.TrafficRoutingAnnotation: laneName}},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Strategy: rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{Steps: []rolloutsv1beta1.CanaryStep{
				{Replicas: ptr.To(intstr.FromInt32(1))},
				{Replicas: ptr.To(intstr.FromString("100%"))},
			}}},
		},
	}
	for _, obj := range []client.Object{svc, deploy, rollout} {
		if err := c.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("create %T %s/%s: %w", obj, namespace, obj.GetName(), err)
		}
	}
	// What Kruise writes when the Rollout starts its canary.
	rollout.Status = rolloutsv1beta1.RolloutStatus{ObservedGeneration: rollout.Generation, Phase: rolloutsv1beta1.RolloutPhaseProgressing}
	if err := c.Status().Update(ctx, rollout); err != nil {
		return nil, fmt.Errorf("set rollout %s/%s progressing: %w", namespace, rollout.Name, err)
	}
	base, err := createPod(ctx, c, namespace, name, podLabel, trafficrouting.BaseTag)
	if err != nil {
		return nil, err
	}
	if err := writeReady(ctx, c, base, corev1.ConditionTrue); err != nil {
		return nil, err
	}
	return createPod(ctx, c, namespace, name, podLabel, laneTag)
}

// createPod creates pod <app>-<tag> with the labels lanes-manager's webhook stamps on a member's
// pods of that role: app=<app> and <podLabel>=<tag>.
func createPod(ctx context.Context, c client.Client, namespace, app, podLabel, tag string) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: app + "-" + tag, Labels: map[string]string{
			"app": app, podLabel: tag,
		}},
		Spec: podSpec(app),
	}
	pod.Spec.SchedulerName = unscheduled
	if err := c.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", namespace, pod.Name, err)
	}
	return pod, nil
}

func podSpec(name string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "example.com/app:v2", Ports: []corev1.ContainerPort{{ContainerPort: 20001}}}}}
}

// writeReady sets the pod's Ready condition through the status subresource, as the kubelet does,
// and leaves pod holding what the API server returned (its new resourceVersion).
func writeReady(ctx context.Context, c client.Client, pod *corev1.Pod, status corev1.ConditionStatus) error {
	cond := corev1.PodCondition{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(time.Now())}
	replaced := false
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			pod.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		pod.Status.Conditions = append(pod.Status.Conditions, cond)
	}
	if err := c.Status().Update(ctx, pod); err != nil {
		return fmt.Errorf("set pod %s/%s Ready=%s: %w", pod.Namespace, pod.Name, status, err)
	}
	return nil
}
