package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

func newRollbackCommand(streams Streams, getter ClientGetter) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback LANE",
		Short: "Undo every releasing member: its workload's pod template goes back to the stable revision",
		Long: "rollback does for each member in a release what `kubectl-kruise rollout undo` does: it writes the stable\n" +
			"revision's pod template back into the Deployment, StatefulSet or CloneSet; Kruise then ends the release.",
		Example: "  kubectl lanes rollback mse-traffic && kubectl lanes wait mse-traffic --for=healthy",
		Args:    exactlyOneLane,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, st, err := connectLane(cmd.Context(), streams, getter, args[0])
			if err != nil {
				return err
			}
			undone := 0
			var errs []error
			for _, m := range st.Members {
				cs := m.Rollout.Status.CanaryStatus
				if !m.releasing() || cs == nil || cs.StableRevision == "" || cs.PodTemplateHash == cs.StableRevision {
					fmt.Fprintf(streams.Out, "%s: nothing to roll back (phase %s)\n", m.Rollout.Name, orDash(string(m.Rollout.Status.Phase)))
					continue
				}
				// The workload is read before the stable template is looked up: the patch holds its
				// resourceVersion, so a change pushed meanwhile is never overwritten.
				workload, err := readWorkload(cmd.Context(), c, m)
				var template map[string]any
				if err == nil {
					template, err = stableTemplate(cmd.Context(), c, m, cs.StableRevision)
				}
				if err == nil {
					err = replaceTemplate(cmd.Context(), c, workload, template)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", m.Rollout.Name, err))
					continue
				}
				undone++
				fmt.Fprintf(streams.Out, "%s: %s rolled back to revision %s\n", m.Rollout.Name, m.Rollout.Spec.WorkloadRef.Kind+"/"+m.Rollout.Spec.WorkloadRef.Name, cs.StableRevision)
			}
			if len(errs) > 0 {
				return fmt.Errorf("rollback incomplete: %w", errors.Join(errs...))
			}
			if undone == 0 {
				return fmt.Errorf("nothing rolled back: no member of lane %s is releasing", args[0])
			}
			return nil
		},
	}
}

// stableTemplate finds the pod template of the member's stable revision.
func stableTemplate(ctx context.Context, c client.Client, m member, stable string) (map[string]any, error) {
	ref := m.Rollout.Spec.WorkloadRef
	ns := m.Rollout.Namespace
	if ref.Kind == "Deployment" {
		rss := &appsv1.ReplicaSetList{}
		if err := c.List(ctx, rss, client.InNamespace(ns), client.MatchingLabels{appsv1.DefaultDeploymentUniqueLabelKey: stable}); err != nil {
			return nil, fmt.Errorf("list replicasets: %w", err)
		}
		for i := range rss.Items {
			rs := &rss.Items[i]
			if owner := metav1.GetControllerOf(rs); owner == nil || owner.Kind != "Deployment" || owner.Name != ref.Name {
				continue
			}
			tpl := rs.Spec.Template.DeepCopy()
			delete(tpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
			return toMap(tpl)
		}
		return nil, fmt.Errorf("the ReplicaSet of stable revision %s of Deployment %s is gone; roll back by re-applying the old manifest", stable, ref.Name)
	}
	revs := &appsv1.ControllerRevisionList{}
	if err := c.List(ctx, revs, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list controllerrevisions: %w", err)
	}
	for i := range revs.Items {
		rev := &revs.Items[i]
		owner := metav1.GetControllerOf(rev)
		if owner == nil || owner.Kind != ref.Kind || owner.Name != ref.Name {
			continue
		}
		if rev.Name != stable && !strings.HasSuffix(rev.Name, "-"+stable) && rev.Labels[appsv1.ControllerRevisionHashLabelKey] != stable {
			continue
		}
		var data map[string]any
		if err := json.Unmarshal(rev.Data.Raw, &data); err != nil {
			return nil, fmt.Errorf("read controllerrevision %s: %w", rev.Name, err)
		}
		tpl, found, err := unstructured.NestedMap(data, "spec", "template")
		if err != nil || !found {
			return nil, fmt.Errorf("controllerrevision %s holds no pod template", rev.Name)
		}
		delete(tpl, "$patch")
		return tpl, nil
	}
	return nil, fmt.Errorf("the ControllerRevision of stable revision %s of %s %s is gone; roll back by re-applying the old manifest", stable, ref.Kind, ref.Name)
}

func toMap(tpl *corev1.PodTemplateSpec) (map[string]any, error) {
	b, err := json.Marshal(tpl)
	if err != nil {
		return nil, fmt.Errorf("encode template: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode template: %w", err)
	}
	return m, nil
}

// readWorkload reads the member's workload (only its identity and resourceVersion matter).
func readWorkload(ctx context.Context, c client.Client, m member) (client.Object, error) {
	ref := m.Rollout.Spec.WorkloadRef
	var obj client.Object
	switch ref.Kind {
	case "Deployment":
		obj = &appsv1.Deployment{}
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "CloneSet":
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(trafficrouting.CloneSetGVK)
		obj = u
	default:
		return nil, fmt.Errorf("cannot roll back a %s", ref.Kind)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: m.Rollout.Namespace, Name: ref.Name}, obj); err != nil {
		return nil, fmt.Errorf("get %s %s: %w", ref.Kind, ref.Name, err)
	}
	return obj, nil
}

// replaceTemplate writes the template into the workload with a JSON patch, as kubectl rollout
// undo, on the condition that the workload is still the one read: the patch carries its
// resourceVersion, so a change made since (a new image pushed) makes the API server refuse it
// with a conflict instead of being overwritten.
func replaceTemplate(ctx context.Context, c client.Client, workload client.Object, template map[string]any) error {
	kind := workload.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		gvk, err := c.GroupVersionKindFor(workload)
		if err != nil {
			return fmt.Errorf("kind of %s: %w", workload.GetName(), err)
		}
		kind = gvk.Kind
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": workload.GetResourceVersion()},
		{"op": "replace", "path": "/metadata/resourceVersion", "value": workload.GetResourceVersion()},
		{"op": "replace", "path": "/spec/template", "value": template},
	})
	if err != nil {
		return fmt.Errorf("encode patch: %w", err)
	}
	if err := c.Patch(ctx, workload, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		// The API server answers a failed test with 422 ("testing value ... failed"), and a write
		// that lost a race with 409.
		if apierrors.IsConflict(err) || strings.Contains(strings.ToLower(err.Error()), "testing value /metadata/resourceversion failed") {
			return fmt.Errorf("%s %s changed since it was read (resourceVersion %s), so its template was left as it is; run rollback again to roll back from its current state: %w",
				kind, workload.GetName(), workload.GetResourceVersion(), err)
		}
		return fmt.Errorf("patch %s %s: %w", kind, workload.GetName(), err)
	}
	return nil
}
