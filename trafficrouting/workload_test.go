package trafficrouting

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Every kind reads its selector, template labels and revisions from where that kind keeps them,
// and the object New makes is recognised again by WorkloadKindOf.
func TestWorkloadKinds(t *testing.T) {
	sel := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "track", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"shadow"}}},
	}
	tpl := map[string]string{"app": "web", "version": "v2"}
	fill := func(k WorkloadKind) client.Object {
		obj := k.New()
		switch w := obj.(type) {
		case *appsv1.Deployment:
			w.Spec.Selector, w.Spec.Template.Labels = sel, tpl
		case *appsv1.StatefulSet:
			w.Spec.Selector, w.Spec.Template.Labels = sel, tpl
			w.Status.UpdateRevision, w.Status.CurrentRevision = "web-2", "web-1"
		case *unstructured.Unstructured:
			w.Object["spec"] = map[string]any{
				"selector": map[string]any{
					"matchLabels":      map[string]any{"app": "web"},
					"matchExpressions": []any{map[string]any{"key": "track", "operator": "NotIn", "values": []any{"shadow"}}},
				},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web", "version": "v2"}}},
			}
			w.Object["status"] = map[string]any{"updateRevision": "web-2", "currentRevision": "web-1"}
		}
		return obj
	}
	tests := map[string]struct {
		kind          WorkloadKind
		owner         metav1.OwnerReference
		optional      bool
		update, curr  string
		wantGVKString string
	}{
		"Deployment":  {kind: DeploymentKind, owner: metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment"}, wantGVKString: "apps/v1, Kind=Deployment"},
		"StatefulSet": {kind: StatefulSetKind, owner: metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet"}, update: "web-2", curr: "web-1", wantGVKString: "apps/v1, Kind=StatefulSet"},
		"CloneSet":    {kind: CloneSetKind, owner: metav1.OwnerReference{APIVersion: "apps.kruise.io/v1alpha1", Kind: "CloneSet"}, optional: true, update: "web-2", curr: "web-1", wantGVKString: "apps.kruise.io/v1alpha1, Kind=CloneSet"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			k, ok := WorkloadKindNamed(name)
			if !ok || k != tc.kind {
				t.Fatalf("WorkloadKindNamed(%q) = %q, %v", name, k, ok)
			}
			if got := k.GVK().String(); got != tc.wantGVKString {
				t.Errorf("GVK %s, want %s", got, tc.wantGVKString)
			}
			if k.Optional() != tc.optional {
				t.Errorf("Optional %v, want %v", k.Optional(), tc.optional)
			}
			if !k.Owns(tc.owner) {
				t.Errorf("does not own %v", tc.owner)
			}
			obj := fill(k)
			if back, ok := WorkloadKindOf(obj); !ok || back != k {
				t.Errorf("WorkloadKindOf(New()) = %q, %v", back, ok)
			}
			gotSel, err := k.Selector(obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sel, gotSel); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tpl, k.TemplateLabels(obj)); diff != "" {
				t.Errorf("template labels (-want +got):\n%s", diff)
			}
			if update, current := k.Revisions(obj); update != tc.update || current != tc.curr {
				t.Errorf("revisions %q, %q, want %q, %q", update, current, tc.update, tc.curr)
			}
		})
	}
	if _, ok := WorkloadKindNamed("DaemonSet"); ok {
		t.Error("DaemonSet is a workload kind")
	}
	if _, ok := WorkloadKindOf(&appsv1.ReplicaSet{}); ok {
		t.Error("a ReplicaSet is a workload kind")
	}
	if DeploymentKind.Owns(metav1.OwnerReference{APIVersion: "apps.kruise.io/v1alpha1", Kind: "Deployment"}) {
		t.Error("a Deployment of another group is owned")
	}
}
