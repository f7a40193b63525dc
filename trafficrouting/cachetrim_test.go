package trafficrouting

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cached returns the objects as lanes-manager's cache holds them (CacheTransform of a copy): the
// unit tests of the resolver, the label reconciler and the mesh route reconciler read these, so
// each proves its decisions need nothing the cache drops.
func cached(objs ...client.Object) []client.Object {
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		t, err := CacheTransform(o.DeepCopyObject())
		if err != nil {
			panic(err)
		}
		out = append(out, t.(client.Object))
	}
	return out
}

// fullMeta is the metadata of an object as the API server serves it: with managedFields and
// kubectl's copy of the applied manifest.
var now = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

func fullMeta(name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "42", Generation: 3, CreationTimestamp: now,
		DeletionTimestamp: &now, Finalizers: []string{"f"},
		Labels: labels,
		Annotations: map[string]string{
			ManagedLabelsAnnotation: "alicloud.service.tag", corev1.LastAppliedConfigAnnotation: `{"kind":"Thing","spec":{"a":"very long manifest"}}`,
		},
		OwnerReferences: owner("Thing", "parent"),
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
	}
}

// keptMeta is fullMeta as the cache keeps it.
func keptMeta(name string, labels map[string]string) metav1.ObjectMeta {
	m := fullMeta(name, labels)
	m.ManagedFields = nil
	m.Annotations = map[string]string{ManagedLabelsAnnotation: "alicloud.service.tag"}
	return m
}

func fullTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"prometheus.io/scrape": "true"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "web:v2", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
		}}},
	}
}

var webSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}

func fullCloneSet() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
		"metadata": map[string]any{
			"namespace": ns, "name": "web", "resourceVersion": "7", "labels": map[string]any{"app": "web"},
			"annotations":   map[string]any{corev1.LastAppliedConfigAnnotation: "{}", "keep": "me"},
			"managedFields": []any{map[string]any{"manager": "kubectl"}},
		},
		"spec": map[string]any{
			"replicas": int64(3),
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web", "version": "v2"}, "annotations": map[string]any{"a": "b"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": "web:v2"}}},
			},
			"updateStrategy": map[string]any{"partition": int64(2)},
		},
		"status": map[string]any{"updateRevision": "web-2", "currentRevision": "web-1", "replicas": int64(3), "readyReplicas": int64(3)},
	}}
	return u
}

// Each kind keeps exactly what Kruise Lanes reads of it, and metadata without managedFields and
// without kubectl's last-applied-configuration.
func TestCacheTransformKeeps(t *testing.T) {
	podLabels := map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: "abc"}
	tplLabels := map[string]string{"app": "web", "tier": "front"}
	for name, tc := range map[string]struct {
		in, want runtime.Object
	}{
		"Pod: metadata and its Ready condition": {
			in: &corev1.Pod{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: fullMeta("web-abc-1", podLabels),
				Spec:       fullTemplate(nil).Spec,
				Status: corev1.PodStatus{
					Phase: corev1.PodRunning, PodIP: "10.0.0.1", StartTime: &now,
					Conditions: []corev1.PodCondition{
						{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
						{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: now, Reason: "ContainersNotReady", Message: "m"},
					},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "web", Ready: false}},
				},
			},
			want: &corev1.Pod{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: keptMeta("web-abc-1", podLabels),
				Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}},
			},
		},
		"Pod without a Ready condition: none": {
			in:   &corev1.Pod{ObjectMeta: fullMeta("pending", podLabels), Status: corev1.PodStatus{Phase: corev1.PodPending}},
			want: &corev1.Pod{ObjectMeta: keptMeta("pending", podLabels)},
		},
		"Pod as a metadata watch sends it: metadata without managedFields and last-applied": {
			in: &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: fullMeta("web-abc-2", podLabels),
			},
			want: &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: keptMeta("web-abc-2", podLabels),
			},
		},
		"ReplicaSet: metadata only, no pod template": {
			in: &appsv1.ReplicaSet{
				ObjectMeta: fullMeta("web-abc", podLabels),
				Spec:       appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3), Selector: webSelector, Template: fullTemplate(podLabels)},
				Status:     appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 3},
			},
			want: &appsv1.ReplicaSet{ObjectMeta: keptMeta("web-abc", podLabels)},
		},
		"Deployment: selector and template labels": {
			in: &appsv1.Deployment{
				ObjectMeta: fullMeta("web", map[string]string{"app": "web", StableRevisionLabel: "abc"}),
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: webSelector, Template: fullTemplate(tplLabels),
					Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}, Paused: true},
				Status: appsv1.DeploymentStatus{Replicas: 3, ObservedGeneration: 3},
			},
			want: &appsv1.Deployment{
				ObjectMeta: keptMeta("web", map[string]string{"app": "web", StableRevisionLabel: "abc"}),
				Spec:       appsv1.DeploymentSpec{Selector: webSelector, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tplLabels}}},
			},
		},
		"StatefulSet: selector, template labels and revisions": {
			in: &appsv1.StatefulSet{
				ObjectMeta: fullMeta("db", nil),
				Spec:       appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), Selector: webSelector, Template: fullTemplate(tplLabels), ServiceName: "db"},
				Status:     appsv1.StatefulSetStatus{Replicas: 3, UpdateRevision: "db-2", CurrentRevision: "db-1", ObservedGeneration: 3},
			},
			want: &appsv1.StatefulSet{
				ObjectMeta: keptMeta("db", nil),
				Spec:       appsv1.StatefulSetSpec{Selector: webSelector, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tplLabels}}},
				Status:     appsv1.StatefulSetStatus{UpdateRevision: "db-2", CurrentRevision: "db-1"},
			},
		},
		"CloneSet: selector, template labels and revisions": {
			in: fullCloneSet(),
			want: &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
				"metadata": map[string]any{"namespace": ns, "name": "web", "resourceVersion": "7", "labels": map[string]any{"app": "web"}, "annotations": map[string]any{"keep": "me"}},
				"spec": map[string]any{
					"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
					"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web", "version": "v2"}}},
				},
				"status": map[string]any{"updateRevision": "web-2", "currentRevision": "web-1"},
			}},
		},
		"Rollout: whole, without managedFields": {
			in: &rolloutsv1beta1.Rollout{ObjectMeta: fullMeta("rollout-web", nil), Spec: rolloutsv1beta1.RolloutSpec{WorkloadRef: rolloutsv1beta1.ObjectRef{Kind: "Deployment", Name: "web"}}},
			want: func() runtime.Object {
				m := fullMeta("rollout-web", nil)
				m.ManagedFields = nil
				return &rolloutsv1beta1.Rollout{ObjectMeta: m, Spec: rolloutsv1beta1.RolloutSpec{WorkloadRef: rolloutsv1beta1.ObjectRef{Kind: "Deployment", Name: "web"}}}
			}(),
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := tc.in.DeepCopyObject()
			got, err := CacheTransform(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			again, err := CacheTransform(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("a second transform changed the object (-once +twice):\n%s", diff)
			}
		})
	}
}

// Everything a decision reads of a workload survives: the WorkloadKind accessors answer the same
// on the trimmed object as on the whole one.
func TestCacheTransformKeepsWhatWorkloadKindsRead(t *testing.T) {
	tplLabels := map[string]string{"app": "web", "tier": "front"}
	for _, obj := range []client.Object{
		&appsv1.Deployment{ObjectMeta: fullMeta("web", map[string]string{CanaryDeploymentLabel: "web"}),
			Spec: appsv1.DeploymentSpec{Selector: webSelector, Template: fullTemplate(tplLabels)}},
		&appsv1.StatefulSet{ObjectMeta: fullMeta("db", nil), Spec: appsv1.StatefulSetSpec{Selector: webSelector, Template: fullTemplate(tplLabels)},
			Status: appsv1.StatefulSetStatus{UpdateRevision: "db-2", CurrentRevision: "db-1"}},
		fullCloneSet(),
	} {
		k, ok := WorkloadKindOf(obj)
		if !ok {
			t.Fatalf("%T is no workload", obj)
		}
		trimmed := cached(obj)[0]
		if k2, ok := WorkloadKindOf(trimmed); !ok || k2 != k {
			t.Fatalf("%s: trimmed kind %q", k, k2)
		}
		wantSel, err := k.Selector(obj)
		if err != nil {
			t.Fatal(err)
		}
		gotSel, err := k.Selector(trimmed)
		if err != nil {
			t.Fatal(err)
		}
		wu, wc := k.Revisions(obj)
		gu, gc := k.Revisions(trimmed)
		for what, diff := range map[string]string{
			"selector":        cmp.Diff(wantSel, gotSel),
			"template labels": cmp.Diff(k.TemplateLabels(obj), k.TemplateLabels(trimmed)),
			"revisions":       cmp.Diff([2]string{wu, wc}, [2]string{gu, gc}),
			"labels":          cmp.Diff(obj.GetLabels(), trimmed.GetLabels()),
			"resourceVersion": cmp.Diff(obj.GetResourceVersion(), trimmed.GetResourceVersion()),
		} {
			if diff != "" {
				t.Errorf("%s: %s differs after trimming (-whole +trimmed):\n%s", k, what, diff)
			}
		}
	}
}
