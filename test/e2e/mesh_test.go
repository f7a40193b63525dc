//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// meshLane creates an istio lane "lane" entered through an MSE Ingress in front of entry, with
// the tag gray carried in x-mse-tag.
func meshLane(t *testing.T, ns, entry string) {
	t.Helper()
	installMSEProvider(t)
	istio := func(tr *rolloutsv1alpha1.TrafficRouting) {
		tr.Annotations = map[string]string{trafficrouting.AnnotationMesh: "istio", trafficrouting.AnnotationDialects: "istio"}
	}
	for _, obj := range laneEntry(ns, entry, istio) {
		if err := cluster.Client.Create(t.Context(), obj); err != nil {
			t.Fatalf("creating %T: %v", obj, err)
		}
	}
}

// laneRoutes reads the lane's Istio objects: for each member Service, whether its
// VirtualService has a lane route (absent: no VirtualService), and which DestinationRules exist.
func laneRoutes(ctx context.Context, ns string) (vs map[string]bool, dr map[string]bool, err error) {
	vs, dr = map[string]bool{}, map[string]bool{}
	for _, gvk := range []struct{ kind string }{{"VirtualService"}, {"DestinationRule"}} {
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("networking.istio.io/v1")
		list.SetKind(gvk.kind + "List")
		if err := cluster.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{trafficrouting.MeshLaneLabel: "lane"}); err != nil {
			return nil, nil, err
		}
		for _, u := range list.Items {
			svc := u.GetLabels()[trafficrouting.MeshServiceLabel]
			if gvk.kind == "DestinationRule" {
				dr[svc] = true
				continue
			}
			routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
			lane := false
			for _, r := range routes {
				if m, ok := r.(map[string]any); ok && m["name"] == "lane-gray" {
					lane = true
				}
			}
			vs[svc] = lane
		}
	}
	return vs, dr, nil
}

// waitLaneRoutes waits until the lane's VirtualServices are exactly want (Service → has a lane
// route) and each has its DestinationRule.
func waitLaneRoutes(t *testing.T, ns, what string, want map[string]bool) time.Duration {
	t.Helper()
	start := time.Now()
	err := framework.WaitFor(t.Context(), stepTimeout, what, func(ctx context.Context) (bool, error) {
		vs, dr, err := laneRoutes(ctx, ns)
		if err != nil {
			return false, err
		}
		if fmt.Sprint(vs) != fmt.Sprint(want) {
			return false, framework.Pending("virtual services (service: lane route) %v, want %v", vs, want)
		}
		for svc := range want {
			if !dr[svc] {
				return false, framework.Pending("no DestinationRule for %s", svc)
			}
		}
		if len(dr) != len(want) {
			return false, framework.Pending("destination rules %v, want one per virtual service %v", dr, want)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestMeshIstioThreeHopLane: a lane A → B → C on Istio where only A and C are released. While
// their canaries are Ready, A and C have a VirtualService with a lane route to their canary
// subset and B has none (its hop serves the lane from base); when C's canary loses readiness its
// lane route goes while A's stays; after approval to completion no lane object remains. The
// objects are judged by Istio's CRD schemas on the real API server.
func TestMeshIstioThreeHopLane(t *testing.T) {
	ctx := t.Context()
	c := cluster.Client
	cluster.StartLanesManager(t, "--mesh-routes=true")
	ns := cluster.Namespace(t)
	const oldImage, newImage = "example.com/app:v1", "example.com/app:v2"
	meshLane(t, ns, "a")
	for _, name := range []string{"a", "b", "c"} {
		d := deployment(ns, name, oldImage, 2)
		for _, obj := range []client.Object{service(ns, name), d, laneRollout(d)} {
			if err := c.Create(ctx, obj); err != nil {
				t.Fatalf("creating %T %s: %v", obj, name, err)
			}
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForDeploymentAvailable(ctx, c, client.ObjectKey{Namespace: ns, Name: name}, stepTimeout); err != nil {
			t.Fatal(err)
		}
	}

	released := []string{"a", "c"}
	for _, name := range released {
		setImage(t, client.ObjectKey{Namespace: ns, Name: name}, newImage)
	}
	for _, name := range released {
		if _, err := framework.WaitForRollout(ctx, c, client.ObjectKey{Namespace: ns, Name: "rollout-" + name}, stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
			t.Fatal(err)
		}
		if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": name}, stepTimeout, map[string]int{newImage: 1, oldImage: 1}); err != nil {
			t.Fatal(err)
		}
	}
	took := waitLaneRoutes(t, ns, "lane routes for a and c only", map[string]bool{"a": true, "c": true})
	t.Logf("lane routes for a and c seen %s after both canaries were Ready", took.Round(time.Millisecond))

	// The stable pods of every member carry the base label the base subset selects.
	for _, name := range []string{"a", "b", "c"} {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			want := trafficrouting.BaseTag
			if p.Spec.Containers[0].Image == newImage {
				want = "gray"
			}
			if got := p.Labels[trafficrouting.LabelIstio]; got != want {
				t.Errorf("pod %s (%s) has %s=%q, want %q", p.Name, p.Spec.Containers[0].Image, trafficrouting.LabelIstio, got, want)
			}
		}
	}

	// C's canary loses readiness: its lane route goes, A's stays.
	canary := readyCanary(t, ns, "c", newImage)
	notReady := canary.DeepCopy()
	for i := range notReady.Status.Conditions {
		if notReady.Status.Conditions[i].Type == corev1.PodReady {
			notReady.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if err := c.Status().Patch(ctx, notReady, client.MergeFrom(canary)); err != nil {
		t.Fatal(err)
	}
	took = waitLaneRoutes(t, ns, "c's lane route to go with its Ready canary", map[string]bool{"a": true, "c": false})
	t.Logf("c's lane route removed %s after its canary turned not Ready", took.Round(time.Millisecond))
	// Give C a Ready canary again (its Deployment replaces the deleted pod).
	if err := c.Delete(ctx, canary); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForReadyPods(ctx, c, ns, map[string]string{"app": "c"}, stepTimeout, map[string]int{newImage: 1, oldImage: 1}); err != nil {
		t.Fatal(err)
	}
	took = waitLaneRoutes(t, ns, "c's lane route back with a Ready canary", map[string]bool{"a": true, "c": true})
	t.Logf("c's lane route back %s after its new canary was Ready", took.Round(time.Millisecond))

	for _, name := range released {
		key := client.ObjectKey{Namespace: ns, Name: "rollout-" + name}
		if err := framework.ApproveRollout(ctx, c, key); err != nil {
			t.Fatal(err)
		}
		if _, err := framework.WaitForRollout(ctx, c, key, stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
			t.Fatal(err)
		}
	}
	took = waitLaneRoutes(t, ns, "no lane object after the release", map[string]bool{})
	t.Logf("every lane object gone %s after both releases completed", took.Round(time.Millisecond))

	events := &corev1.EventList{}
	if err := c.List(ctx, events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if strings.HasPrefix(e.Reason, "LaneRoute") && e.Type == corev1.EventTypeWarning {
			t.Errorf("unexpected warning %s: %s", e.Reason, e.Message)
		}
	}
}

// readyCanary returns the Ready pod of app=name running image.
func readyCanary(t *testing.T, ns, name, image string) *corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := cluster.Client.List(t.Context(), pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.Containers[0].Image != image || !p.DeletionTimestamp.IsZero() {
			continue
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return p
			}
		}
	}
	t.Fatalf("no Ready pod of %s runs %s", name, image)
	return nil
}
