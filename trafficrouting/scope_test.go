package trafficrouting

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
)

func TestNamespaceScopeFollowsTheWebhookSelector(t *testing.T) {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "lanes"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: PodWebhookName, NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"kruise-lanes.io/enabled": "true"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"lanes-system"},
			}},
		}}},
	}
	nsObj := func(name string, labels map[string]string) client.Object {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cfg,
		nsObj("shop", map[string]string{"kruise-lanes.io/enabled": "true"}),
		nsObj("opted-out", nil),
		nsObj("lanes-system", map[string]string{"kruise-lanes.io/enabled": "true"}),
	).Build()
	scope := &NamespaceScope{Reader: c, WebhookConfiguration: "lanes"}
	for ns, want := range map[string]bool{"shop": true, "opted-out": false, "lanes-system": false, "missing": false} {
		got, err := scope.Serves(t.Context(), ns)
		if err != nil || got != want {
			t.Errorf("Serves(%s) = %v, %v; want %v", ns, got, err, want)
		}
	}
	none := &NamespaceScope{Reader: c, WebhookConfiguration: "not-installed"}
	if got, err := none.Serves(t.Context(), "opted-out"); err != nil || !got {
		t.Errorf("without a configuration Serves = %v, %v; want every namespace served", got, err)
	}
}

func TestReconcileSkipsNamespacesOutOfScope(t *testing.T) {
	// A canary pod the webhook never saw, in a namespace the webhook's selector leaves out: the
	// reconciler must not label it either.
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "lanes"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: PodWebhookName, NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"kruise-lanes.io/enabled": "true"},
		}}},
	}
	p := pod(map[string]string{"pod-template-hash": "new"}, owner("ReplicaSet", "a-new"))
	p.Name = "a-pod"
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(cfg, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, p,
		deployment("a", map[string]string{StableRevisionLabel: "old"}), replicaSet("a-new", "a"),
		rollout("rollout-a", "Deployment", "a", "mse-traffic", "Progressing"), lane("mse-traffic", nil, "gray")).
		WithIndex(rolloutType(), RolloutWorkloadIndex, IndexRolloutWorkload).Build()
	r := &PodLabelReconciler{Client: c, Resolver: &Resolver{Reader: c, Defaults: DefaultDefaults()}, Observer: &tally{},
		Scope: &NamespaceScope{Reader: c, WebhookConfiguration: "lanes"}}
	if _, err := r.Reconcile(t.Context(), reconcileRequest(p)); err != nil {
		t.Fatal(err)
	}
	got := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(p), got); err != nil {
		t.Fatal(err)
	}
	if len(laneLabels(got)) != 0 {
		t.Errorf("pod in an opted-out namespace got lane labels %v", laneLabels(got))
	}
}

func rolloutType() client.Object { return &rolloutsv1beta1.Rollout{} }

func reconcileRequest(o client.Object) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
}
