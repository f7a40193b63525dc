package laneops

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// A CloneSet member's pods are the ones its whole selector selects, matchExpressions included,
// as for a Deployment or a StatefulSet.
func TestLoadCloneSetMemberPodsFollowTheWholeSelector(t *testing.T) {
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	cs := &unstructured.Unstructured{}
	cs.SetGroupVersionKind(trafficrouting.CloneSetGVK)
	scheme.AddKnownTypeWithName(trafficrouting.CloneSetGVK, cs.DeepCopy())
	cs.SetNamespace("shop")
	cs.SetName("web")
	if err := unstructured.SetNestedField(cs.Object, map[string]any{
		"matchLabels":      map[string]any{"app": "web"},
		"matchExpressions": []any{map[string]any{"key": "track", "operator": "NotIn", "values": []any{"shadow"}}},
	}, "spec", "selector"); err != nil {
		t.Fatal(err)
	}
	pod := func(name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels}}
	}
	tr := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "gray"}}
	ro := &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollout-web", Annotations: map[string]string{trafficrouting.TrafficRoutingAnnotation: "gray"}},
		Spec:       rolloutsv1beta1.RolloutSpec{WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps.kruise.io/v1alpha1", Kind: "CloneSet", Name: "web"}},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cs, tr, ro,
		pod("web-1", map[string]string{"app": "web"}),
		pod("web-shadow", map[string]string{"app": "web", "track": "shadow"}),
		pod("other", map[string]string{"app": "other"}),
	).Build()
	st, err := Load(t.Context(), c, "shop", "gray", trafficrouting.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 1 {
		t.Fatalf("%d members, want 1", len(st.Members))
	}
	var names []string
	for i := range st.Members[0].Pods {
		names = append(names, client.ObjectKeyFromObject(&st.Members[0].Pods[i]).Name)
	}
	if diff := cmp.Diff([]string{"web-1"}, names); diff != "" {
		t.Errorf("member pods (-want +got):\n%s", diff)
	}
}
