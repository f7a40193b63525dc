//go:build e2e

package e2e

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
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
