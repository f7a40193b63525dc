//go:build e2e

package e2e

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// TestLifecycleTemplateDialectLabel: a pod template that already sets a dialect's label (seed
// 004's ASM_TRAFFIC_TAG: base), released in partition style in an asm lane. While the lane is open
// the canary pod says the lane tag and the stable pods say base; after the release completes every
// pod says base again, the template's value, not a pod without the label. Run with the lane's base
// labels off and on. The subtests share one lanes-manager and run one after another.
func TestLifecycleTemplateDialectLabel(t *testing.T) {
	cluster.StartLanesManager(t)
	for _, baseLabels := range []bool{false, true} {
		t.Run("base-labels-"+map[bool]string{false: "off", true: "on"}[baseLabels], func(t *testing.T) {
			ns := cluster.Namespace(t)
			d := deployment(ns, "mocka", "example.com/mocka:v1", 3)
			// The template's own label, not the selector's (seed 004 selects app only): the
			// builder shares one map between them.
			d.Spec.Template.Labels = maps.Clone(d.Spec.Template.Labels)
			d.Spec.Template.Labels[trafficrouting.LabelASM] = trafficrouting.BaseTag
			m := newLaneMember(d, 3, 1, 2)
			m.create(t, func(tr *rolloutsv1alpha1.TrafficRouting) {
				if tr.Annotations == nil {
					tr.Annotations = map[string]string{}
				}
				tr.Annotations[trafficrouting.AnnotationDialects] = string(trafficrouting.DialectASM)
				tr.Annotations[trafficrouting.AnnotationBaseLabels] = strconv.FormatBool(baseLabels)
			})

			pods := m.release(t)
			for image, want := range map[string]string{m.newImage: "gray", m.oldImage: trafficrouting.BaseTag} {
				for _, p := range pods[image] {
					if got, ok := p.Labels[trafficrouting.LabelASM]; !ok || got != want {
						t.Errorf("pod %s on %s while the lane is open: %s = %q (present %t), want %q",
							p.Name, image, trafficrouting.LabelASM, got, ok, want)
					}
				}
			}

			m.complete(t)
			err := framework.WaitFor(t.Context(), 30*time.Second, "every pod to say "+trafficrouting.LabelASM+": base after the release", func(ctx context.Context) (bool, error) {
				pods := &corev1.PodList{}
				if err := cluster.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": m.workload.GetName()}); err != nil {
					return false, err
				}
				var live []corev1.Pod
				for _, p := range pods.Items {
					if p.DeletionTimestamp.IsZero() {
						live = append(live, p)
					}
				}
				if len(live) != m.replicas {
					return false, framework.Pending("%d pods, want %d", len(live), m.replicas)
				}
				for _, p := range live {
					if got, ok := p.Labels[trafficrouting.LabelASM]; !ok || got != trafficrouting.BaseTag {
						return false, framework.Pending("pod %s: %s = %q (present %t); labels %v, annotations %v",
							p.Name, trafficrouting.LabelASM, got, ok, p.Labels, p.Annotations)
					}
				}
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLifecycleSelectorDialectLabel: the Deployment's selector itself matches on the dialect's
// label (ASM_TRAFFIC_TAG: base in selector and template). Giving a canary the lane's value would
// make its ReplicaSet let it go and create another without end; the lane refuses instead: the
// release pauses with every pod still saying base, no pod is orphaned, and the Rollout gets a
// LaneMisconfigured Warning naming the selector.
func TestLifecycleSelectorDialectLabel(t *testing.T) {
	ctx := t.Context()
	manager := cluster.StartLanesManager(t)
	ns := cluster.Namespace(t)
	d := deployment(ns, "mocka", "example.com/mocka:v1", 3)
	d.Spec.Template.Labels[trafficrouting.LabelASM] = trafficrouting.BaseTag // the builder shares this map with the selector
	if d.Spec.Selector.MatchLabels[trafficrouting.LabelASM] != trafficrouting.BaseTag {
		t.Fatalf("selector %v does not match on %s", d.Spec.Selector.MatchLabels, trafficrouting.LabelASM)
	}
	m := newLaneMember(d, 3, 1, 2)
	m.create(t, func(tr *rolloutsv1alpha1.TrafficRouting) {
		if tr.Annotations == nil {
			tr.Annotations = map[string]string{}
		}
		tr.Annotations[trafficrouting.AnnotationDialects] = string(trafficrouting.DialectASM)
	})
	pods := m.release(t)
	for _, image := range []string{m.newImage, m.oldImage} {
		for _, p := range pods[image] {
			if got := p.Labels[trafficrouting.LabelASM]; got != trafficrouting.BaseTag {
				t.Errorf("pod %s on %s: %s = %q, want the selector's base", p.Name, image, trafficrouting.LabelASM, got)
			}
		}
	}
	if n := admissions(t, manager, "misconfigured"); n < len(pods[m.newImage]) {
		t.Errorf("the webhook counted %d misconfigured admissions, want at least %d", n, len(pods[m.newImage]))
	}
	err := framework.WaitFor(ctx, 10*time.Second, "a LaneMisconfigured Event naming the selector", func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := cluster.Client.List(ctx, events, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if e.Reason == "LaneMisconfigured" && e.InvolvedObject.Name == m.rollout.Name && e.Type == corev1.EventTypeWarning &&
				strings.Contains(e.Message, "whose selector matches on "+trafficrouting.LabelASM) {
				return true, nil
			}
		}
		return false, framework.Pending("no LaneMisconfigured Event naming the selector among %d", len(events.Items))
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing churns: a few seconds later the namespace still holds exactly the workload's pods,
	// each owned by a ReplicaSet.
	time.Sleep(3 * time.Second)
	all := &corev1.PodList{}
	if err := cluster.Client.List(ctx, all, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != m.replicas {
		t.Errorf("%d pods in the namespace, want %d (a pod left its ReplicaSet and was replaced?)", len(all.Items), m.replicas)
	}
	for _, p := range all.Items {
		if metav1.GetControllerOf(&p) == nil {
			t.Errorf("pod %s has no controller: it left its ReplicaSet", p.Name)
		}
	}
}
