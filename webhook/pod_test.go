package webhook

import (
	"encoding/json"
	"strings"
	"testing"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

type counts struct {
	outcomes         map[Outcome]int
	applied, removed int
}

func (c *counts) Admission(o Outcome) { c.outcomes[o]++ }
func (c *counts) LabelsApplied(n int) { c.applied += n }
func (c *counts) LabelsRemoved(n int) { c.removed += n }

func newScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fixture(tag string) []client.Object {
	tr := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lane"}}
	if tag != "" {
		tr.Spec.Strategy.RequestHeaderModifier = &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: tag}}}
	}
	r := &rolloutsv1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollout-a", Annotations: map[string]string{trafficrouting.TrafficRoutingAnnotation: "lane"}}}
	r.Spec.WorkloadRef = rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "a"}
	r.Status.Phase = rolloutsv1beta1.RolloutPhaseProgressing
	return []client.Object{
		tr, r,
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a", Labels: map[string]string{trafficrouting.StableRevisionLabel: "old"}}},
	}
}

func handler(t testing.TB, objs []client.Object) (*PodLabeler, *counts, *record.FakeRecorder) {
	t.Helper()
	s := newScheme(t)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithIndex(&rolloutsv1beta1.Rollout{}, trafficrouting.RolloutWorkloadIndex, trafficrouting.IndexRolloutWorkload).Build()
	obs := &counts{outcomes: map[Outcome]int{}}
	rec := record.NewFakeRecorder(10)
	return &PodLabeler{
		Resolver: &trafficrouting.Resolver{Reader: c, Defaults: trafficrouting.DefaultDefaults()},
		Recorder: rec,
		Observer: obs,
	}, obs, rec
}

func request(t *testing.T, hash string) admission.Request {
	t.Helper()
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "a-" + hash + "-", Labels: map[string]string{"app": "a", "pod-template-hash": hash},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "a-" + hash, Controller: ptr.To(true), UID: "u"}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "a:2"}}},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Namespace: "shop",
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw},
	}}
}

func patchedLabels(t *testing.T, resp admission.Response) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range operations(t, resp) {
		if strings.HasPrefix(p.Path, "/metadata/labels/") {
			key := strings.ReplaceAll(strings.ReplaceAll(strings.TrimPrefix(p.Path, "/metadata/labels/"), "~1", "/"), "~0", "~")
			out[key] = p.Value.(string)
		}
	}
	return out
}

func TestCanaryPodIsStamped(t *testing.T) {
	h, obs, _ := handler(t, fixture("gray"))
	resp := h.Handle(t.Context(), request(t, "new"))
	if !resp.Allowed {
		t.Fatalf("pod rejected: %v", resp.Result)
	}
	got := patchedLabels(t, resp)
	for k, v := range map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"} {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q (patch %q)", k, got[k], v, resp.Patch)
		}
	}
	if obs.outcomes[OutcomeLabelled] != 1 || obs.applied != 2 {
		t.Errorf("observer %+v, want one labelled admission and 2 labels applied", obs)
	}
}

func TestStablePodIsLeftAlone(t *testing.T) {
	h, obs, _ := handler(t, fixture("gray"))
	resp := h.Handle(t.Context(), request(t, "old"))
	if !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("allowed %v patch %q, want allowed with no patch", resp.Allowed, resp.Patch)
	}
	if obs.outcomes[OutcomeUnchanged] != 1 {
		t.Errorf("observer %+v", obs)
	}
}

func TestMisconfiguredLaneWarnsAndAdmits(t *testing.T) {
	h, obs, rec := handler(t, fixture(""))
	resp := h.Handle(t.Context(), request(t, "new"))
	if !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("allowed %v patch %q, want the pod admitted untouched", resp.Allowed, resp.Patch)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "the lane tag cannot be determined") {
		t.Errorf("warnings %q", resp.Warnings)
	}
	select {
	case e := <-rec.Events:
		if !strings.Contains(e, "LaneMisconfigured") {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no Event recorded")
	}
	if obs.outcomes[OutcomeMisconfigured] != 1 {
		t.Errorf("observer %+v", obs)
	}
}
