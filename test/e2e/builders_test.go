//go:build e2e

package e2e

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// deployment returns a Deployment of replicas pods labelled app=name running image. kwok fakes the
// pods, so any image string works.
func deployment(namespace, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:  name,
						Image: image,
						Ports: []corev1.ContainerPort{{ContainerPort: 20001}},
					}},
				},
			},
		},
	}
}

// service returns a Service selecting app=name on port 20001.
func service(namespace, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{
				Name: "http", Port: 20001, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(20001),
			}},
		},
	}
}

// statefulSet returns a StatefulSet of replicas pods labelled app=name running image, created in
// parallel (kwok makes each Ready within a second; ordered creation would only add waits).
func statefulSet(namespace, name, image string, replicas int32) *appsv1.StatefulSet {
	d := deployment(namespace, name, image, replicas)
	return &appsv1.StatefulSet{
		ObjectMeta: d.ObjectMeta,
		Spec: appsv1.StatefulSetSpec{
			Replicas:            d.Spec.Replicas,
			Selector:            d.Spec.Selector,
			Template:            d.Spec.Template,
			ServiceName:         name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
		},
	}
}

// cloneSet returns an OpenKruise CloneSet (apps.kruise.io/v1alpha1) of replicas pods labelled
// app=name running image. It is unstructured: the suite's scheme does not carry OpenKruise's types.
func cloneSet(namespace, name, image string, replicas int32) *unstructured.Unstructured {
	d := deployment(namespace, name, image, replicas)
	template, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&d.Spec.Template)
	if err != nil {
		panic(err) // a PodTemplateSpec always converts
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"replicas": int64(replicas),
			"selector": map[string]any{"matchLabels": map[string]any{"app": name}},
			"template": template,
		},
	}}
	u.SetAPIVersion("apps.kruise.io/v1alpha1")
	u.SetKind("CloneSet")
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// installMSEProvider puts our mse provider into Kruise's ConfigMap (key
// lua.traffic.routing.ingress.mse), where Kruise reads it on its next reconcile.
func installMSEProvider(t *testing.T) {
	t.Helper()
	script, err := luascripts.Ingress("mse")
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.SetKruiseConfiguration(t.Context(), cluster.Client, "lua.traffic.routing.ingress.mse", string(script)); err != nil {
		t.Fatal(err)
	}
}
