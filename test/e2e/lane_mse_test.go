//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// seed002 is the Alibaba MSE end-to-end canary walkthrough (shared/seeds/002): A → B → C, an MSE
// Ingress in front of A, one v1alpha1 Rollout per service joined into the lane "mse-traffic" by
// annotation, and the TrafficRouting that routes User-Agent: xiaoming into the lane and tags it with
// x-mse-tag: gray. Images are any string: kwok fakes the pods.
const seed002 = `
apiVersion: v1
kind: Service
metadata: {name: spring-cloud-a}
spec:
  ports: [{name: http, port: 20001, protocol: TCP, targetPort: 20001}]
  selector: {app: spring-cloud-a}
---
apiVersion: v1
kind: Service
metadata: {name: spring-cloud-b}
spec:
  ports: [{name: http, port: 20001, protocol: TCP, targetPort: 20001}]
  selector: {app: spring-cloud-b}
---
apiVersion: v1
kind: Service
metadata: {name: spring-cloud-c}
spec:
  ports: [{name: http, port: 20001, protocol: TCP, targetPort: 20001}]
  selector: {app: spring-cloud-c}
%[1]s
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: spring-cloud-a
  annotations:
    mse.ingress.kubernetes.io/service-subset: ""
spec:
  ingressClassName: mse
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service: {name: spring-cloud-a, port: {number: 20001}}
`

// seed002Deployment is one service's Deployment from the seed.
const seed002Deployment = `
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 2
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      annotations: {msePilotCreateAppName: %[1]s}
      labels: {app: %[1]s}
    spec:
      containers:
      - name: %[1]s
        image: %[2]s
        imagePullPolicy: Always
        env: [{name: JAVA_HOME, value: /usr/lib/jvm/java-1.8-openjdk/jre}]
        ports: [{containerPort: 20001}]
`

// seed002Lane is the seed's TrafficRouting and its three member Rollouts.
const seed002Lane = `
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata: {name: mse-traffic}
spec:
  objectRef:
  - service: spring-cloud-a
    ingress: {classType: mse, name: spring-cloud-a}
  strategy:
    matches:
    - headers:
      - {type: Exact, name: User-Agent, value: xiaoming}
    requestHeaderModifier:
      set:
      - {name: x-mse-tag, value: gray}
%[1]s
`

// seed002Rollout is one service's v1alpha1 Rollout from the seed.
const seed002Rollout = `
---
apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: %[1]s
  annotations:
    rollouts.kruise.io/trafficrouting: mse-traffic
spec:
  objectRef:
    workloadRef: {apiVersion: apps/v1, kind: Deployment, name: %[2]s}
  strategy:
    canary:
      steps:
      - pause: {}
        replicas: 1
      patchPodTemplateMetadata:
        labels:
          alicloud.service.tag: gray
          opensergo.io/canary-gray: gray
`

func seedImage(svc, version string) string {
	return "registry.example/mse-demo/" + svc + ":" + version
}

// TestMSELaneSeed002 runs the seed 002 flow through the real Kruise controller with our mse
// provider installed in kruise-rollout-configuration: new images for A and C open the lane on A's
// Ingress, B stays untouched, and approving A and C closes it again.
func TestMSELaneSeed002(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := cluster.Client
	ns := cluster.Namespace(t)
	const (
		svcA, svcB, svcC = "spring-cloud-a", "spring-cloud-b", "spring-cloud-c"
		oldTag, newTag   = "mse-2.0.0", "mse-2.0.1"
		canaryIngress    = "spring-cloud-a-canary"
	)
	services := []string{svcA, svcB, svcC}
	rolloutOf := map[string]string{svcA: "rollout-a", svcB: "rollout-b", svcC: "rollout-c"}

	installMSEProvider(t)

	var deployments, rollouts strings.Builder
	for _, svc := range services {
		fmt.Fprintf(&deployments, seed002Deployment, svc, seedImage(svc, oldTag))
		fmt.Fprintf(&rollouts, seed002Rollout, rolloutOf[svc], svc)
	}
	if err := framework.ApplyYAML(ctx, c, ns, []byte(fmt.Sprintf(seed002, deployments.String()))); err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		if err := framework.WaitForDeploymentAvailable(ctx, c, client.ObjectKey{Namespace: ns, Name: svc}, stepTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if err := framework.ApplyYAML(ctx, c, ns, []byte(fmt.Sprintf(seed002Lane, rollouts.String()))); err != nil {
		t.Fatal(err)
	}
	trKey := client.ObjectKey{Namespace: ns, Name: "mse-traffic"}
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, c, trKey, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseHealthy); err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: rolloutOf[svc]}, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
			t.Fatal(err)
		}
	}

	// Kruise gives even an untouched Rollout a canary status (state Completed, no canary
	// replicas), possibly a moment after it reports Healthy; B's must not change while A and C
	// are released.
	roBBefore := &rolloutsv1alpha1.Rollout{}
	err := framework.WaitFor(ctx, stepTimeout, "rollout-b's initial canary status", func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: rolloutOf[svcB]}, roBBefore); err != nil {
			return false, err
		}
		if roBBefore.Status.CanaryStatus == nil {
			return false, framework.Pending("no canary status yet")
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bBefore := roBBefore.Status.CanaryStatus

	// Release A and C; B keeps its image.
	for _, svc := range []string{svcA, svcC} {
		setImage(t, client.ObjectKey{Namespace: ns, Name: svc}, seedImage(svc, newTag))
	}
	for _, svc := range []string{svcA, svcC} {
		key := client.ObjectKey{Namespace: ns, Name: rolloutOf[svc]}
		if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
			t.Fatal(err)
		}
		// One Ready canary pod beside the two stable ones.
		if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": svc}, stepTimeout,
			map[string]int{seedImage(svc, oldTag): 2, seedImage(svc, newTag): 1}); err != nil {
			t.Fatal(err)
		}
		// A v1alpha1 Rollout without rolling-style: partition converts to enableExtraWorkloadForCanary:
		// the canary runs in a separate Deployment, and only there does Kruise apply
		// patchPodTemplateMetadata, so the canary pod carries the seed's lane labels.
		assertExtraWorkloadCanary(t, ns, svc, seedImage(svc, newTag), map[string]string{
			"alicloud.service.tag":     "gray",
			"opensergo.io/canary-gray": "gray",
		})
	}
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, c, trKey, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseProgressing); err != nil {
		t.Fatal(err)
	}

	// The lane's entry: A's canary Ingress carries our provider's annotations and, in shared mode,
	// points at A's stable Service (lane separation comes from pod labels, not a -canary Service).
	want := map[string]string{
		"nginx.ingress.kubernetes.io/canary":                      "true",
		"nginx.ingress.kubernetes.io/canary-by-header":            "User-Agent",
		"nginx.ingress.kubernetes.io/canary-by-header-value":      "xiaoming",
		"mse.ingress.kubernetes.io/request-header-control-update": "x-mse-tag gray",
		"mse.ingress.kubernetes.io/service-subset":                "gray",
	}
	ing := waitIngressAnnotations(t, ns, canaryIngress, want)
	if got := ingressBackends(ing); len(got) != 1 || got[0] != svcA {
		t.Errorf("canary ingress backends = %v, want only the stable Service %s", got, svcA)
	}

	// B is untouched: its Rollout still Healthy with the same (finished) canary status it had
	// before, no canary workload, its two stable pods.
	roB := &rolloutsv1alpha1.Rollout{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: rolloutOf[svcB]}, roB); err != nil {
		t.Fatal(err)
	}
	if roB.Status.Phase != rolloutsv1alpha1.RolloutPhaseHealthy {
		t.Errorf("rollout-b: phase %q, want Healthy", roB.Status.Phase)
	}
	if diff := cmp.Diff(bBefore, roB.Status.CanaryStatus); diff != "" {
		t.Errorf("rollout-b canary status changed while A and C were released (-before +after):\n%s", diff)
	}
	if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": svcB}, stepTimeout,
		map[string]int{seedImage(svcB, oldTag): 2}); err != nil {
		t.Fatal(err)
	}
	if n := deploymentsFor(t, ns, svcB); n != 1 {
		t.Errorf("found %d Deployments selecting app=%s, want only its own", n, svcB)
	}

	// Close the lane: approve A and C to completion.
	for _, svc := range []string{svcA, svcC} {
		if err := framework.ApproveRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: rolloutOf[svc]}); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range []string{svcA, svcC} {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: rolloutOf[svc]}, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": svc}, stepTimeout,
			map[string]int{seedImage(svc, newTag): 2}); err != nil {
			t.Fatal(err)
		}
	}
	waitIngressGone(t, ns, canaryIngress)
	if _, err := framework.WaitForTrafficRoutingPhase(ctx, c, trKey, stepTimeout, rolloutsv1alpha1.TrafficRoutingPhaseHealthy); err != nil {
		t.Fatal(err)
	}
}

// ingressBackends lists the Service names an Ingress routes to.
func ingressBackends(ing *networkingv1.Ingress) []string {
	var out []string
	if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil {
		out = append(out, b.Service.Name)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service != nil {
				out = append(out, p.Backend.Service.Name)
			}
		}
	}
	return out
}

// deploymentsFor counts the Deployments in namespace whose pods carry app=app (a canary Deployment
// made by Kruise copies the selector).
func deploymentsFor(t *testing.T, namespace, app string) int {
	t.Helper()
	list := &appsv1.DeploymentList{}
	if err := cluster.Client.List(t.Context(), list, client.InNamespace(namespace)); err != nil {
		t.Fatalf("listing deployments: %v", err)
	}
	n := 0
	for _, d := range list.Items {
		if d.Spec.Template.Labels["app"] == app {
			n++
		}
	}
	return n
}

// assertExtraWorkloadCanary checks that Kruise released svc through one canary Deployment (label
// rollouts.kruise.io/canary-deployment=<svc>) whose pods run image and carry labels.
func assertExtraWorkloadCanary(t *testing.T, namespace, svc, image string, labels map[string]string) {
	t.Helper()
	ctx := t.Context()
	canaries := &appsv1.DeploymentList{}
	if err := cluster.Client.List(ctx, canaries, client.InNamespace(namespace), client.MatchingLabels{"rollouts.kruise.io/canary-deployment": svc}); err != nil {
		t.Fatalf("listing canary deployments of %s: %v", svc, err)
	}
	if len(canaries.Items) != 1 {
		t.Fatalf("found %d canary Deployments for %s, want 1", len(canaries.Items), svc)
	}
	pods := &corev1.PodList{}
	if err := cluster.Client.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{"app": svc}); err != nil {
		t.Fatalf("listing pods of %s: %v", svc, err)
	}
	found := 0
	for _, p := range pods.Items {
		if p.Spec.Containers[0].Image != image {
			continue
		}
		found++
		for k, v := range labels {
			if p.Labels[k] != v {
				t.Errorf("canary pod %s: label %s = %q, want %q", p.Name, k, p.Labels[k], v)
			}
		}
	}
	if found == 0 {
		t.Errorf("no pod of %s runs %s", svc, image)
	}
}
