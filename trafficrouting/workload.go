package trafficrouting

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CloneSetGVK is OpenKruise's CloneSet, used only where apps.kruise.io is installed.
var CloneSetGVK = schema.GroupVersionKind{Group: "apps.kruise.io", Version: "v1alpha1", Kind: "CloneSet"}

// WorkloadKind is one kind of workload a Rollout's workloadRef can name — Deployment,
// StatefulSet or CloneSet — and where that kind keeps what Kruise Lanes reads: its pod selector,
// its pod template and its revisions. Deployments and StatefulSets are read as their typed
// objects, CloneSets as unstructured objects (OpenKruise's module is not a dependency). It is the
// one place that knows the kinds; code that needs a workload asks it rather than switching on the
// kind.
type WorkloadKind string

// Workload kinds a Rollout can release.
const (
	DeploymentKind  WorkloadKind = "Deployment"
	StatefulSetKind WorkloadKind = "StatefulSet"
	CloneSetKind    WorkloadKind = "CloneSet"
)

// WorkloadKindNamed returns the workload kind of a workloadRef kind; false for a kind Kruise
// Lanes does not know.
func WorkloadKindNamed(kind string) (WorkloadKind, bool) {
	switch k := WorkloadKind(kind); k {
	case DeploymentKind, StatefulSetKind, CloneSetKind:
		return k, true
	}
	return "", false
}

// WorkloadKindOf returns the workload kind of a workload object as New makes it (a typed
// Deployment or StatefulSet, an unstructured CloneSet); false for any other object.
func WorkloadKindOf(obj client.Object) (WorkloadKind, bool) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return DeploymentKind, true
	case *appsv1.StatefulSet:
		return StatefulSetKind, true
	case *unstructured.Unstructured:
		if o.GroupVersionKind().GroupKind() == CloneSetGVK.GroupKind() {
			return CloneSetKind, true
		}
	}
	return "", false
}

// GVK is the kind's group, version and kind.
func (k WorkloadKind) GVK() schema.GroupVersionKind {
	if k == CloneSetKind {
		return CloneSetGVK
	}
	return appsv1.SchemeGroupVersion.WithKind(string(k))
}

// Kind is the kind's name, as a workloadRef says it.
func (k WorkloadKind) Kind() string { return string(k) }

// Optional reports whether the kind is served only where its CRD is installed (CloneSet): callers
// read it only when they were told it is.
func (k WorkloadKind) Optional() bool { return k == CloneSetKind }

// Owns reports whether an owner reference (a pod's controller) names a workload of this kind.
func (k WorkloadKind) Owns(ref metav1.OwnerReference) bool {
	return ref.Kind == string(k) && strings.HasPrefix(ref.APIVersion, k.GVK().Group+"/")
}

// New returns an empty object of the kind to read a workload into.
func (k WorkloadKind) New() client.Object {
	switch k {
	case DeploymentKind:
		return &appsv1.Deployment{}
	case StatefulSetKind:
		return &appsv1.StatefulSet{}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(k.GVK())
	return u
}

// NewList returns an empty list of the kind to list workloads into.
func (k WorkloadKind) NewList() client.ObjectList {
	switch k {
	case DeploymentKind:
		return &appsv1.DeploymentList{}
	case StatefulSetKind:
		return &appsv1.StatefulSetList{}
	}
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(k.GVK().GroupVersion().WithKind(k.Kind() + "List"))
	return l
}

// Selector is the workload's pod selector (spec.selector); nil when it has none.
func (k WorkloadKind) Selector(obj client.Object) (*metav1.LabelSelector, error) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return w.Spec.Selector, nil
	case *appsv1.StatefulSet:
		return w.Spec.Selector, nil
	case *unstructured.Unstructured:
		m, found, err := unstructured.NestedMap(w.Object, "spec", "selector")
		if err != nil {
			return nil, fmt.Errorf("selector of %s %s/%s: %w", k.Kind(), w.GetNamespace(), w.GetName(), err)
		}
		if !found {
			return nil, nil
		}
		sel := &metav1.LabelSelector{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, sel); err != nil {
			return nil, fmt.Errorf("selector of %s %s/%s: %w", k.Kind(), w.GetNamespace(), w.GetName(), err)
		}
		return sel, nil
	}
	return nil, fmt.Errorf("%T is not a %s", obj, k.Kind())
}

// TemplateLabels are the labels of the workload's pod template (spec.template.metadata.labels).
func (k WorkloadKind) TemplateLabels(obj client.Object) map[string]string {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return w.Spec.Template.Labels
	case *appsv1.StatefulSet:
		return w.Spec.Template.Labels
	case *unstructured.Unstructured:
		l, _, _ := unstructured.NestedStringMap(w.Object, "spec", "template", "metadata", "labels")
		return l
	}
	return nil
}

// Revisions are the workload's status.updateRevision and status.currentRevision: a StatefulSet's
// or CloneSet's revision names. A Deployment has none (Kruise marks its stable revision with
// StableRevisionLabel instead).
func (k WorkloadKind) Revisions(obj client.Object) (update, current string) {
	switch w := obj.(type) {
	case *appsv1.StatefulSet:
		return w.Status.UpdateRevision, w.Status.CurrentRevision
	case *unstructured.Unstructured:
		update, _, _ = unstructured.NestedString(w.Object, "status", "updateRevision")
		current, _, _ = unstructured.NestedString(w.Object, "status", "currentRevision")
		return update, current
	}
	return "", ""
}
