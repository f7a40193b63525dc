package plugin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Kruise's configuration ConfigMap, where it looks up Lua providers.
const (
	ConfigMapName    = "kruise-rollout-configuration"
	DefaultNamespace = "kruise-rollout"
	// FieldManager is the server-side apply field manager that owns our keys.
	FieldManager = "kruise-lanes"
)

// InstallResult says what the installer did with each key.
type InstallResult struct {
	// Installed keys are now ours with our script.
	Installed []string
	// Skipped keys hold someone else's value, left untouched because overwriting was not allowed.
	Skipped []string
	// Replaced keys held someone else's value and were overwritten because it was allowed.
	Replaced []string
}

// Installer writes provider scripts into Kruise's ConfigMap with server-side apply under its own
// field manager, owning only its keys: a user's other keys are never touched, and a key the user
// set themselves is not overwritten unless Overwrite says so.
type Installer struct {
	Client    client.Client
	Namespace string
	// Scripts maps ConfigMap keys (lua.traffic.routing.ingress.<class>) to script text.
	Scripts map[string]string
	// Overwrite allows taking over keys that another manager set.
	Overwrite bool
}

// Install applies the scripts. The keys it applies are the only keys in the applied object, so a
// key it owned before and no longer applies is removed by the API server.
func (in *Installer) Install(ctx context.Context) (InstallResult, error) {
	var res InstallResult
	cm := &corev1.ConfigMap{}
	err := in.Client.Get(ctx, types.NamespacedName{Namespace: in.Namespace, Name: ConfigMapName}, cm)
	if err != nil && !apierrors.IsNotFound(err) {
		return res, fmt.Errorf("read %s/%s: %w", in.Namespace, ConfigMapName, err)
	}
	ours, err := ownedKeys(cm.ManagedFields)
	if err != nil {
		return res, err
	}
	apply := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(in.Scripts)) {
		script := in.Scripts[key]
		current, exists := cm.Data[key]
		switch {
		case !exists || ours[key] || current == script:
			apply[key] = script
			res.Installed = append(res.Installed, key)
		case in.Overwrite:
			apply[key] = script
			res.Replaced = append(res.Replaced, key)
		default:
			res.Skipped = append(res.Skipped, key)
		}
	}
	if err := in.apply(ctx, apply); err != nil {
		return res, err
	}
	return res, nil
}

// Uninstall removes the keys this field manager owns, keeping every other key.
func (in *Installer) Uninstall(ctx context.Context) error {
	cm := &corev1.ConfigMap{}
	if err := in.Client.Get(ctx, types.NamespacedName{Namespace: in.Namespace, Name: ConfigMapName}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("read %s/%s: %w", in.Namespace, ConfigMapName, err)
	}
	return in.apply(ctx, map[string]string{})
}

func (in *Installer) apply(ctx context.Context, data map[string]string) error {
	cfg := corev1apply.ConfigMap(ConfigMapName, in.Namespace).WithData(data)
	// Force: a key is applied only when it is new, already ours, equal, or Overwrite allows it.
	if err := in.Client.Apply(ctx, cfg, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply provider scripts to %s/%s: %w", in.Namespace, ConfigMapName, err)
	}
	return nil
}

// ownedKeys returns the data keys our field manager owns according to managedFields.
func ownedKeys(entries []metav1.ManagedFieldsEntry) (map[string]bool, error) {
	out := map[string]bool{}
	for _, e := range entries {
		if e.Manager != FieldManager || e.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(strings.NewReader(string(e.FieldsV1.Raw))); err != nil {
			return nil, fmt.Errorf("read managed fields of %s: %w", ConfigMapName, err)
		}
		set.Iterate(func(p fieldpath.Path) {
			if len(p) == 2 && p[0].FieldName != nil && *p[0].FieldName == "data" && p[1].FieldName != nil {
				out[*p[1].FieldName] = true
			}
		})
	}
	return out, nil
}
