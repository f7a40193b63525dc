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
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// laneLabelKeys are the labels the default dialects (mse, opensergo) give a "gray" lane pod.
var laneLabelKeys = map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}

// laneFixture creates the entry of a lane named "lane" (Service, MSE Ingress with an empty
// service-subset, TrafficRouting injecting x-mse-tag: gray) in front of the workload entry. Each
// edit is applied to the TrafficRouting before it is created.
func laneFixture(t *testing.T, ns, entry string, edits ...func(*rolloutsv1alpha1.TrafficRouting)) {
	t.Helper()
	installMSEProvider(t)
	for _, obj := range append([]client.Object{service(ns, entry)}, laneEntry(ns, entry, edits...)...) {
		if err := cluster.Client.Create(t.Context(), obj); err != nil {
			t.Fatalf("creating %T: %v", obj, err)
		}
	}
}

// laneEntry builds the entry of the lane "lane": the MSE Ingress of entry (empty service-subset)
// and the TrafficRouting that routes User-Agent: xiaoming into the lane with x-mse-tag: gray. Each
// edit is applied to the TrafficRouting.
func laneEntry(ns, entry string, edits ...func(*rolloutsv1alpha1.TrafficRouting)) []client.Object {
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
	for _, edit := range edits {
		edit(tr)
	}
	return []client.Object{ing, tr}
}

// laneRollout is a v1beta1 Rollout of the workload of obj's kind and name in the lane: one pod, then
// all, in partition style (v1beta1's default).
func laneRollout(obj client.Object) *rolloutsv1beta1.Rollout {
	gvk, err := apiutil.GVKForObject(obj, cluster.Client.Scheme())
	if err != nil {
		panic(err) // the suite's workloads are typed in its scheme or unstructured with a kind
	}
	return &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: "rollout-" + obj.GetName(), Annotations: map[string]string{rolloutsv1alpha1.TrafficRoutingAnnotation: "lane"}},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: obj.GetName()},
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

// admissions reads lanes-manager's count of admissions with the given outcome (labelled,
// unchanged, misconfigured, error).
func admissions(t *testing.T, m *framework.LanesManager, outcome string) int {
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
	prefix := fmt.Sprintf("lanes_pod_admissions_total{outcome=%q} ", outcome)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

// admissionsLabelled reads lanes-manager's count of pods its webhook labelled at creation.
func admissionsLabelled(t *testing.T, m *framework.LanesManager) int {
	t.Helper()
	return admissions(t, m, "labelled")
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

// awaitReconcilerLabelled waits for the LaneLabels Event of the reconciler for pod: the recorder
// writes Events asynchronously, after the patch that labelled the pod.
func awaitReconcilerLabelled(ctx context.Context, t *testing.T, ns, pod string) bool {
	t.Helper()
	err := framework.WaitFor(ctx, 10*time.Second, "the LaneLabels Event of "+pod, func(ctx context.Context) (bool, error) {
		return reconcilerLabelled(ctx, t, ns, pod), nil
	})
	return err == nil
}

// laneMember is one lane member taken through a release in a lane test: its workload (created on
// the old image), its Rollout, and the Ready pods by image expected while the Rollout is paused at
// its first batch.
type laneMember struct {
	workload           client.Object
	rollout            *rolloutsv1beta1.Rollout
	replicas           int
	oldImage, newImage string
	firstBatch         map[string]int
}

// newLaneMember describes a member of the lane named "lane": workload must run image
// example.com/<name>:v1 and be labelled app=<name>; its release goes to example.com/<name>:v2.
// firstBatch is the Ready pods at step 1 as {canaries, stables}.
func newLaneMember(workload client.Object, replicas, canaries, stables int) *laneMember {
	m := &laneMember{
		workload: workload,
		rollout:  laneRollout(workload),
		replicas: replicas,
		oldImage: "example.com/" + workload.GetName() + ":v1",
		newImage: "example.com/" + workload.GetName() + ":v2",
	}
	m.firstBatch = map[string]int{m.newImage: canaries, m.oldImage: stables}
	return m
}

func (m *laneMember) key() client.ObjectKey { return client.ObjectKeyFromObject(m.rollout) }

// create makes the lane's entry, the workload and its Rollout, and waits until the Rollout is
// Healthy and every pod runs the old image.
func (m *laneMember) create(t *testing.T, edits ...func(*rolloutsv1alpha1.TrafficRouting)) {
	t.Helper()
	ctx := t.Context()
	ns, name := m.workload.GetNamespace(), m.workload.GetName()
	laneFixture(t, ns, name, edits...)
	for _, obj := range []client.Object{m.workload, m.rollout} {
		if err := cluster.Client.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	if _, err := framework.WaitForRollout(ctx, cluster.Client, m.key(), stepTimeout, "to be Healthy", framework.RolloutHealthy()); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForReadyPods(ctx, cluster.Client, ns, map[string]string{"app": name}, stepTimeout, map[string]int{m.oldImage: m.replicas}); err != nil {
		t.Fatal(err)
	}
}

// release changes the workload's image (a JSON patch works on every kind, CRDs included) and waits
// until the Rollout is paused at step 1 with the first batch Ready; it returns the pods by image.
func (m *laneMember) release(t *testing.T) map[string][]corev1.Pod {
	t.Helper()
	ctx := t.Context()
	patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":%q}]`, m.newImage)
	obj, ok := m.workload.DeepCopyObject().(client.Object)
	if !ok {
		t.Fatalf("%T is not a client.Object", m.workload)
	}
	if err := cluster.Client.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
		t.Fatalf("setting the image of %s: %v", m.workload.GetName(), err)
	}
	if _, err := framework.WaitForRollout(ctx, cluster.Client, m.key(), stepTimeout, "to pause at step 1", framework.RolloutPausedAt(1)); err != nil {
		t.Fatal(err)
	}
	if err := framework.WaitForReadyPods(ctx, cluster.Client, m.workload.GetNamespace(), map[string]string{"app": m.workload.GetName()}, stepTimeout, m.firstBatch); err != nil {
		t.Fatal(err)
	}
	return podsByImage(ctx, t, m.workload.GetNamespace(), m.workload.GetName())
}

// assertLaneLabels checks the first batch: every canary pod carries exactly the lane labels, no
// stable pod carries any. With atCreation, each canary was labelled by the webhook, not later by
// the reconciler.
func (m *laneMember) assertLaneLabels(t *testing.T, pods map[string][]corev1.Pod, atCreation bool) {
	t.Helper()
	for _, p := range pods[m.newImage] {
		if got := laneLabelsOf(p); fmt.Sprint(got) != fmt.Sprint(laneLabelKeys) {
			t.Errorf("canary pod %s has lane labels %v, want %v", p.Name, got, laneLabelKeys)
		}
		if atCreation && reconcilerLabelled(t.Context(), t, p.Namespace, p.Name) {
			t.Errorf("canary pod %s was labelled after creation by the reconciler, not by the webhook", p.Name)
		}
	}
	for _, p := range pods[m.oldImage] {
		if got := laneLabelsOf(p); len(got) != 0 {
			t.Errorf("stable pod %s has lane labels %v", p.Name, got)
		}
	}
}

// complete approves the first batch (the last step, 100%, does not pause), waits for the Rollout
// to complete, and then until every pod runs the new image and none keeps a lane label.
func (m *laneMember) complete(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	if err := framework.ApproveRollout(ctx, cluster.Client, m.key()); err != nil {
		t.Fatal(err)
	}
	if _, err := framework.WaitForRollout(ctx, cluster.Client, m.key(), stepTimeout, "to complete", framework.RolloutCompleted()); err != nil {
		t.Fatal(err)
	}
	err := framework.WaitFor(ctx, stepTimeout, "no pod to keep a lane label after the release", func(ctx context.Context) (bool, error) {
		pods := podsByImage(ctx, t, m.workload.GetNamespace(), m.workload.GetName())
		if len(pods[m.newImage]) != m.replicas || len(pods[m.oldImage]) != 0 {
			return false, framework.Pending("%d pods on %s, %d on %s", len(pods[m.newImage]), m.newImage, len(pods[m.oldImage]), m.oldImage)
		}
		for _, p := range pods[m.newImage] {
			if len(laneLabelsOf(p)) != 0 {
				return false, framework.Pending("pod %s still has %v", p.Name, laneLabelsOf(p))
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runLaneRelease takes m through a release with lanes-manager running (with managerArgs):
// canaries labelled at creation by the webhook, stables not, and no lane label left after
// completion.
func runLaneRelease(t *testing.T, m *laneMember, managerArgs ...string) *framework.LanesManager {
	t.Helper()
	manager := cluster.StartLanesManager(t, managerArgs...)
	m.create(t)
	start := time.Now()
	pods := m.release(t)
	t.Logf("first batch of %s Ready and paused %s after the image change", m.workload.GetName(), time.Since(start).Round(100*time.Millisecond))
	m.assertLaneLabels(t, pods, true)
	if n := admissionsLabelled(t, manager); n != len(pods[m.newImage]) {
		t.Errorf("the webhook labelled %d pods at creation, want %d", n, len(pods[m.newImage]))
	}
	m.complete(t)
	return manager
}

// The lane tests start lanes-manager, whose webhook configuration is one per cluster: they do not
// call t.Parallel, so they run one after another before the parallel scenarios resume.

// TestLaneLabelsPartitionDeployment: a partition-style Deployment in a lane gets the lane labels
// on its canary pod at creation (Kruise itself labels nothing in this style), its stable pods get
// none, and after approval to completion no pod keeps a lane label.
func TestLaneLabelsPartitionDeployment(t *testing.T) {
	ns := cluster.Namespace(t)
	runLaneRelease(t, newLaneMember(deployment(ns, "a", "example.com/a:v1", 3), 3, 1, 2))
}

// TestLaneLabelsWatchedNamespace: the same with --watch-namespaces (the chart's
// manager.watchNamespaces), where lanes-manager caches the workload kinds from that namespace
// only and its lane decisions read them through controller-runtime's cache reader, not the
// informers' stores. lanes-manager says at start which kinds it reads that way.
func TestLaneLabelsWatchedNamespace(t *testing.T) {
	ns := cluster.Namespace(t)
	manager := runLaneRelease(t, newLaneMember(deployment(ns, "w", "example.com/w:v1", 3), 3, 1, 2), "--watch-namespaces="+ns)
	logged := manager.Tail(10000)
	if !strings.Contains(logged, "lane decisions read the informers' stores") {
		t.Fatalf("lanes-manager did not log which kinds its lane decisions read through the cache reader:\n%s", manager.Tail(40))
	}
	line := lineWith(logged, "lane decisions read the informers' stores")
	for _, kind := range []string{"*v1.ReplicaSet", "*v1.Deployment", "*v1.StatefulSet"} {
		if !strings.Contains(line, kind) {
			t.Errorf("lanes-manager reads %s from a store with --watch-namespaces, want the cache reader: %s", kind, line)
		}
	}
}

// lineWith is the first line of s that contains sub.
func lineWith(s, sub string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// TestLaneLabelsStatefulSet: the same for a native StatefulSet, whose canary pod is the highest
// ordinal recreated at the StatefulSet's update revision.
func TestLaneLabelsStatefulSet(t *testing.T) {
	ns := cluster.Namespace(t)
	runLaneRelease(t, newLaneMember(statefulSet(ns, "s", "example.com/s:v1", 3), 3, 1, 2))
}

// TestLaneLabelsExtraWorkloadDeployment: with enableExtraWorkloadForCanary Kruise creates a canary
// Deployment (labelled rollouts.kruise.io/canary-deployment) beside the untouched stable one;
// without patchPodTemplateMetadata its pod gets the lane labels from the webhook alone.
func TestLaneLabelsExtraWorkloadDeployment(t *testing.T) {
	ns := cluster.Namespace(t)
	m := newLaneMember(deployment(ns, "e", "example.com/e:v1", 3), 3, 1, 3)
	m.rollout.Spec.Strategy.Canary.EnableExtraWorkloadForCanary = true
	runLaneRelease(t, m)
}

// TestLaneLabelsCloneSet: the same for an OpenKruise CloneSet run by OpenKruise's own controller.
func TestLaneLabelsCloneSet(t *testing.T) {
	if err := cluster.KruiseAppsRunning(); err != nil {
		t.Skipf("CloneSets need the OpenKruise manager: %v", err)
	}
	ns := cluster.Namespace(t)
	runLaneRelease(t, newLaneMember(cloneSet(ns, "c", "example.com/c:v1", 3), 3, 1, 2))
}

// TestLaneLabelsManagerRestart: with lanes-manager stopped, the canary batch is admitted unlabelled
// (failurePolicy Ignore); once it is back, its reconciler labels those pods within 5 s of being
// ready again.
func TestLaneLabelsManagerRestart(t *testing.T) {
	ctx := t.Context()
	ns := cluster.Namespace(t)
	m := newLaneMember(deployment(ns, "r", "example.com/r:v1", 3), 3, 1, 2)
	manager := cluster.StartLanesManager(t)
	m.create(t)
	if err := manager.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	pods := m.release(t)
	for _, p := range pods[m.newImage] {
		if got := laneLabelsOf(p); len(got) != 0 {
			t.Fatalf("canary pod %s has lane labels %v although lanes-manager was stopped", p.Name, got)
		}
	}

	// The reconciler may label the batch before the restarted manager reports ready (its
	// controllers start before its webhook certificate is loaded), so the batch is watched from
	// the moment the process starts.
	start := time.Now()
	labelled := make(chan time.Time, 1)
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go func() {
		err := framework.WaitFor(watchCtx, 60*time.Second, "the restarted lanes-manager to label the canary batch", func(ctx context.Context) (bool, error) {
			pods := &corev1.PodList{}
			if err := cluster.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": "r"}); err != nil {
				return false, err
			}
			n := 0
			for _, p := range pods.Items {
				if p.DeletionTimestamp.IsZero() && p.Spec.Containers[0].Image == m.newImage {
					if fmt.Sprint(laneLabelsOf(p)) != fmt.Sprint(laneLabelKeys) {
						return false, framework.Pending("canary pod %s has %v", p.Name, laneLabelsOf(p))
					}
					n++
				}
			}
			return n == m.firstBatch[m.newImage], nil
		})
		if err == nil {
			labelled <- time.Now()
		}
		close(labelled)
	}()
	cluster.StartLanesManager(t)
	ready := time.Now()
	var at time.Time
	select {
	case at = <-labelled:
	case <-time.After(5 * time.Second):
		t.Fatalf("the canary batch was not labelled within 5s of lanes-manager being ready again")
	}
	if at.IsZero() {
		t.Fatal("the canary batch was never labelled after the restart")
	}
	t.Logf("restart: ready %s after start; canary batch labelled %s after start, %s after ready (negative: before /readyz passed)",
		ready.Sub(start).Round(10*time.Millisecond), at.Sub(start).Round(10*time.Millisecond), at.Sub(ready).Round(10*time.Millisecond))
	pods = podsByImage(ctx, t, ns, "r")
	m.assertLaneLabels(t, pods, false)
	for _, p := range pods[m.newImage] {
		if !awaitReconcilerLabelled(ctx, t, ns, p.Name) {
			t.Errorf("canary pod %s has no LaneLabels Event from the reconciler", p.Name)
		}
	}
	m.complete(t)
}

// TestLaneMisconfigured: a lane whose tag cannot be determined (no requestHeaderModifier, no tag
// annotation) does not block its pods: the canary is admitted unlabelled, and the Rollout gets a
// LaneMisconfigured Warning saying what to set.
func TestLaneMisconfigured(t *testing.T) {
	ctx := t.Context()
	ns := cluster.Namespace(t)
	m := newLaneMember(deployment(ns, "x", "example.com/x:v1", 3), 3, 1, 2)
	manager := cluster.StartLanesManager(t)
	m.create(t, func(tr *rolloutsv1alpha1.TrafficRouting) { tr.Spec.Strategy.RequestHeaderModifier = nil })
	pods := m.release(t)
	for _, image := range []string{m.newImage, m.oldImage} {
		for _, p := range pods[image] {
			if got := laneLabelsOf(p); len(got) != 0 {
				t.Errorf("pod %s of a misconfigured lane has lane labels %v", p.Name, got)
			}
		}
	}
	if n := admissions(t, manager, "misconfigured"); n < len(pods[m.newImage]) {
		t.Errorf("the webhook counted %d misconfigured admissions, want at least %d", n, len(pods[m.newImage]))
	}
	err := framework.WaitFor(ctx, 10*time.Second, "a LaneMisconfigured Event on the Rollout", func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := cluster.Client.List(ctx, events, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Reason == "LaneMisconfigured" && e.InvolvedObject.Kind == "Rollout" && e.InvolvedObject.Name == m.rollout.Name {
				if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "requestHeaderModifier") {
					return false, framework.Permanent(fmt.Errorf("event %s/%s: %s", e.Type, e.Reason, e.Message))
				}
				return true, nil
			}
		}
		return false, framework.Pending("no LaneMisconfigured Event among %d", len(events.Items))
	})
	if err != nil {
		t.Fatal(err)
	}
	m.complete(t)
}
