//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// laneLabelKeys are the labels the default dialects (mse, opensergo) give a "gray" lane pod.
var laneLabelKeys = map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}

// laneFixture creates the entry of a lane named "lane" (Service, MSE Ingress with an empty
// service-subset, TrafficRouting injecting x-mse-tag: gray) in front of the Deployment entry.
func laneFixture(t *testing.T, ns, entry string) {
	t.Helper()
	ctx := t.Context()
	script, err := luascripts.Ingress("mse")
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.SetKruiseConfiguration(ctx, cluster.Client, "lua.traffic.routing.ingress.mse", string(script)); err != nil {
		t.Fatal(err)
	}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: entry, Annotations: map[string]string{"mse.ingress.kubernetes.io/service-subset": ""}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("mse"),
			Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: entry, Port: networkingv1.ServiceBackendPort{Number: 20001}},
				}}},
			}}}},
		},
	}
	tr := &rolloutsv1alpha1.TrafficRouting{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lane"},
		Spec: rolloutsv1alpha1.TrafficRoutingSpec{
			ObjectRef: []rolloutsv1alpha1.TrafficRoutingRef{{Service: entry, Ingress: &rolloutsv1alpha1.IngressTrafficRouting{ClassType: "mse", Name: entry}}},
			Strategy: rolloutsv1alpha1.TrafficRoutingStrategy{
				Matches:               []rolloutsv1alpha1.HttpRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{{Name: "User-Agent", Value: "xiaoming"}}}},
				RequestHeaderModifier: &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: "gray"}}},
			},
		},
	}
	for _, obj := range []client.Object{service(ns, entry), ing, tr} {
		if err := cluster.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T: %v", obj, err)
		}
	}
}

// laneRollout is a v1beta1 Rollout of a Deployment in the lane: one pod, then all, in partition
// style (v1beta1's default).
func laneRollout(ns, name string) *rolloutsv1beta1.Rollout {
	return &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rollout-" + name, Annotations: map[string]string{rolloutsv1alpha1.TrafficRoutingAnnotation: "lane"}},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Strategy: rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{Steps: []rolloutsv1beta1.CanaryStep{
				{Replicas: ptr.To(intstr.FromInt32(1)), Pause: rolloutsv1beta1.RolloutPause{}},
				{Replicas: ptr.To(intstr.FromString("100%")), Pause: rolloutsv1beta1.RolloutPause{}},
			}}},
		},
	}
}

// podsByImage lists the pods of app=name grouped by their first container's image.
func podsByImage(ctx context.Context, t *testing.T, ns, name string) map[string][]corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := cluster.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp.IsZero() {
			out[p.Spec.Containers[0].Image] = append(out[p.Spec.Containers[0].Image], p)
		}
	}
	return out
}

// laneLabelsOf returns the pod's labels among laneLabelKeys.
func laneLabelsOf(p corev1.Pod) map[string]string {
	out := map[string]string{}
	for k := range laneLabelKeys {
		if v, ok := p.Labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

// admissionsLabelled reads lanes-manager's count of pods its webhook labelled at creation.
func admissionsLabelled(t *testing.T, m *framework.LanesManager) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", m.MetricsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, `lanes_pod_admissions_total{outcome="labelled"} `); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

// reconcilerLabelled reports whether the label reconciler (not the webhook) labelled the pod: it
// records an Event on the Rollout each time it patches a pod.
func reconcilerLabelled(ctx context.Context, t *testing.T, ns, pod string) bool {
	t.Helper()
	events := &corev1.EventList{}
	if err := cluster.Client.List(ctx, events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.Reason == "LaneLabels" && strings.HasPrefix(e.Message, "pod "+pod+":") {
			return true
		}
	}
	return false
}

// TestLaneLabelsPartitionDeployment: a partition-style Deployment in a lane gets the lane labels
// on its canary pod at creation (Kruise itself labels nothing in this style), its stable pods get
// none, and after approval to completion no pod keeps a lane label.
func TestLaneLabelsPartitionDeployment(t *testing.T) {
	ctx := t.Context()
	c := cluster.Client
	manager := cluster.StartLanesManager(t)
	ns := cluster.Namespace(t)
	const name, oldImage, newImage = "a", "example.com/a:v1", "example.com/a:v2"
	key := client.ObjectKey{Namespace: ns, Name: "rollout-" + name}
	laneFixture(t, ns, name)
	if err := c.Create(ctx, deployment(ns, name, oldImage, 3)); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, laneRollout(ns, name)); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForDeploymentAvailable(ctx, c, client.ObjectKey{Namespace: ns, Name: name}, stepTimeout); err != nil {
		t.Fatal(err)
	}

	setImage(t, client.ObjectKey{Namespace: ns, Name: name}, newImage)
	if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": name}, stepTimeout, map[string]int{newImage: 1, oldImage: 2}); err != nil {
		t.Fatal(err)
	}
	pods := podsByImage(ctx, t, ns, name)
	for _, p := range pods[newImage] {
		if got := laneLabelsOf(p); fmt.Sprint(got) != fmt.Sprint(laneLabelKeys) {
			t.Errorf("canary pod %s has lane labels %v, want %v", p.Name, got, laneLabelKeys)
		}
		if reconcilerLabelled(ctx, t, ns, p.Name) {
			t.Errorf("canary pod %s was labelled after creation by the reconciler, not by the webhook", p.Name)
		}
	}
	if n := admissionsLabelled(t, manager); n != len(pods[newImage]) {
		t.Errorf("the webhook labelled %d pods at creation, want %d", n, len(pods[newImage]))
	}
	for _, p := range pods[oldImage] {
		if got := laneLabelsOf(p); len(got) != 0 {
			t.Errorf("stable pod %s has lane labels %v", p.Name, got)
		}
	}

	if err := framework.ApproveRollout(ctx, c, key); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
		t.Fatal(err)
	}
	err := framework.WaitFor(ctx, stepTimeout, "no pod to keep a lane label after the release", func(ctx context.Context) (bool, error) {
		pods := podsByImage(ctx, t, ns, name)
		if len(pods[newImage]) != 3 || len(pods[oldImage]) != 0 {
			return false, nil
		}
		for _, p := range pods[newImage] {
			if len(laneLabelsOf(p)) != 0 {
				return false, fmt.Errorf("pod %s still has %v", p.Name, laneLabelsOf(p))
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
