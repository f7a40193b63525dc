package laneops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// ErrNothingToRollBack means a member is not in a release that can be undone.
var ErrNothingToRollBack = errors.New("nothing to roll back")

// CanRollBack reports whether the member is in a release whose canary differs from its stable
// revision.
func (m Member) CanRollBack() bool {
	cs := m.Rollout.Status.CanaryStatus
	return m.Releasing() && cs != nil && cs.StableRevision != "" && cs.PodTemplateHash != cs.StableRevision
}

// RollBack does for a member what `kubectl-kruise rollout undo` does: it writes the stable
// revision's pod template back into the Deployment (from its ReplicaSet), StatefulSet or CloneSet
// (from its ControllerRevision); Kruise then ends the release. It returns the stable revision.
// The workload is read before the stable template is looked up, and the patch carries its
// resourceVersion, so a change pushed meanwhile is never overwritten.
//
// templates reads the ReplicaSets and ControllerRevisions that hold the stable template: the API
// server (lanes-manager's API reader), not lanes-manager's cache, which keeps no pod template
// (trafficrouting.CacheTransform) and no ControllerRevision; a client of the API server, such as
// kubectl lanes', can pass itself.
func RollBack(ctx context.Context, c client.Client, templates client.Reader, m Member) (string, error) {
	if !m.CanRollBack() {
		return "", fmt.Errorf("rollout %s: %w (phase %s)", m.Rollout.Name, ErrNothingToRollBack, m.Rollout.Status.Phase)
	}
	stable := m.Rollout.Status.CanaryStatus.StableRevision
	workload, err := readWorkload(ctx, c, m)
	if err != nil {
		return "", err
	}
	template, err := stableTemplate(ctx, templates, m, stable)
	if err != nil {
		return "", err
	}
	if err := replaceTemplate(ctx, c, workload, template); err != nil {
		return "", err
	}
	return stable, nil
}

// stableTemplate finds the pod template of the member's stable revision.
func stableTemplate(ctx context.Context, c client.Reader, m Member, stable string) (map[string]any, error) {
	ref := m.Rollout.Spec.WorkloadRef
	ns := m.Rollout.Namespace
	if ref.Kind == trafficrouting.DeploymentKind.Kind() {
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
func readWorkload(ctx context.Context, c client.Client, m Member) (client.Object, error) {
	ref := m.Rollout.Spec.WorkloadRef
	k, ok := trafficrouting.WorkloadKindNamed(ref.Kind)
	if !ok {
		return nil, fmt.Errorf("cannot roll back a %s", ref.Kind)
	}
	obj := k.New()
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
