package laneops

import (
	"strings"
	"testing"

	"github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

func rollbackDeployment(image string) *appsv1.Deployment {
	lbl := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
			},
		},
	}
}

// A rollback writes the stable template only into the workload it read: an image pushed between
// the read and the patch makes it fail with a sentence, and the pushed image stays.
func TestReplaceTemplatePrecondition(t *testing.T) {
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	stable, err := toMap(&rollbackDeployment("web:v1").Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	m := Member{Rollout: &v1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollout-web"},
		Spec:       v1beta1.RolloutSpec{WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}},
	}}

	t.Run("unchanged workload: rolled back", func(t *testing.T) {
		c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(rollbackDeployment("web:v2")).Build()
		w, err := readWorkload(t.Context(), c, m)
		if err != nil {
			t.Fatal(err)
		}
		if err := replaceTemplate(t.Context(), c, w, stable); err != nil {
			t.Fatal(err)
		}
		got := &appsv1.Deployment{}
		if err := c.Get(t.Context(), types.NamespacedName{Namespace: "shop", Name: "web"}, got); err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Template.Spec.Containers[0].Image; img != "web:v1" {
			t.Errorf("image %s after rollback, want the stable web:v1", img)
		}
	})
	t.Run("image pushed after the read: refused, the push stays", func(t *testing.T) {
		c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(rollbackDeployment("web:v2")).Build()
		w, err := readWorkload(t.Context(), c, m)
		if err != nil {
			t.Fatal(err)
		}
		pushed := w.(*appsv1.Deployment).DeepCopy()
		pushed.Spec.Template.Spec.Containers[0].Image = "web:v3"
		if err := c.Update(t.Context(), pushed); err != nil {
			t.Fatal(err)
		}
		err = replaceTemplate(t.Context(), c, w, stable)
		if err == nil || !strings.Contains(err.Error(), "Deployment web changed since it was read") || !strings.Contains(err.Error(), "run rollback again") {
			t.Fatalf("error %v, want one saying the Deployment changed since it was read and to run rollback again", err)
		}
		got := &appsv1.Deployment{}
		if err := c.Get(t.Context(), types.NamespacedName{Namespace: "shop", Name: "web"}, got); err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Template.Spec.Containers[0].Image; img != "web:v3" {
			t.Errorf("image %s after a refused rollback, want the pushed web:v3", img)
		}
	})
}
