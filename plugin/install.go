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
	// ProviderKeysAnnotation on Kruise's ConfigMap lists the keys Kruise Lanes installed. It
	// remembers a key as ours after someone else's edit has taken its field ownership away, so the
	// edit is repaired instead of being mistaken for a key the user set themselves.
	ProviderKeysAnnotation = "kruise-lanes.io/provider-keys"
)

// Action is what the installer did, or would do, with one key.
type Action string

// Actions, one per key.
const (
	// ActionUnchanged: the key already holds our script and is ours.
	ActionUnchanged Action = "unchanged"
	// ActionInstalled: the key was absent and never ours; it now holds our script.
	ActionInstalled Action = "installed"
	// ActionUpdated: the key was ours with another script (an earlier build); it now holds this one.
	ActionUpdated Action = "updated"
	// ActionRepaired: the key was ours, and someone deleted it or changed its text; it is put back.
	ActionRepaired Action = "repaired"
	// ActionReplaced: the key held someone else's script and was overwritten because it was allowed.
	ActionReplaced Action = "replaced"
	// ActionSkipped: the key holds someone else's script, left untouched because overwriting was
	// not allowed.
	ActionSkipped Action = "skipped"
)

// KeyResult is the installer's action on one key.
type KeyResult struct {
	Key    string
	Action Action
	// Deleted is true when a repaired key had been removed (rather than edited).
	Deleted bool
	// Managers are the field managers that own the key's current value when it is not ours (who
	// edited it, or who set it first).
	Managers []string
}

// InstallResult says what the installer did with each key, in key order.
type InstallResult struct {
	Keys []KeyResult
}

// With returns the keys that got one of the actions.
func (r InstallResult) With(actions ...Action) []KeyResult {
	var out []KeyResult
	for _, k := range r.Keys {
		if slices.Contains(actions, k.Action) {
			out = append(out, k)
		}
	}
	return out
}

// Changed reports whether the install wrote anything.
func (r InstallResult) Changed() bool {
	return len(r.With(ActionInstalled, ActionUpdated, ActionRepaired, ActionReplaced)) > 0
}

// Installer writes provider scripts into Kruise's ConfigMap with server-side apply under its own
// field manager, owning only its keys: a user's other keys are never touched, and a key the user
// set themselves is not overwritten unless Overwrite says so. Install is idempotent; run on every
// change of the ConfigMap it also repairs our keys when someone deletes or edits them.
type Installer struct {
	// Reader reads the ConfigMap with its managedFields: the API server, never a cache that
	// strips them.
	Reader client.Reader
	// Writer applies the ConfigMap.
	Writer    client.Writer
	Namespace string
	// Scripts maps ConfigMap keys (luascripts.IngressKey, luascripts.CustomNetworkKey) to script text.
	Scripts map[string]string
	// Overwrite allows taking over keys that another manager set.
	Overwrite bool
}

// Install applies the scripts. The keys it applies are the only keys in the applied object, so a
// key it owned before and no longer applies is removed by the API server. It returns the
// ConfigMap as the API server left it (for Events) and what it did with each key.
func (in *Installer) Install(ctx context.Context) (*corev1.ConfigMap, InstallResult, error) {
	cm, err := in.read(ctx)
	if err != nil {
		return nil, InstallResult{}, err
	}
	owners, err := keyOwners(cm.ManagedFields)
	if err != nil {
		return nil, InstallResult{}, err
	}
	res, apply := Plan(State{Data: cm.Data, Owners: owners, Recorded: recordedKeys(cm.Annotations)}, in.Scripts, in.Overwrite)
	if !res.Changed() && !dropsOwnedKey(owners, apply) && cm.Annotations[ProviderKeysAnnotation] == recordValue(apply) && cm.ResourceVersion != "" {
		return cm, res, nil
	}
	applied, err := in.apply(ctx, apply)
	if err != nil {
		return nil, res, err
	}
	return applied, res, nil
}

// State is what Plan knows about Kruise's ConfigMap.
type State struct {
	Data map[string]string
	// Owners maps each data key to the field managers that own it.
	Owners map[string][]string
	// Recorded are the keys ProviderKeysAnnotation lists.
	Recorded map[string]bool
}

// Plan decides each key's action and the data to apply. A key is ours when our field manager owns
// it or the annotation records it; ours is kept at our script (updated, repaired), someone else's
// is left alone unless overwrite.
func Plan(s State, scripts map[string]string, overwrite bool) (res InstallResult, apply map[string]string) {
	apply = map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(scripts)) {
		script := scripts[key]
		current, exists := s.Data[key]
		owners := s.Owners[key]
		ownedByUs := slices.Contains(owners, FieldManager)
		others := slices.DeleteFunc(slices.Clone(owners), func(m string) bool { return m == FieldManager })
		kr := KeyResult{Key: key}
		switch {
		case exists && current == script:
			kr.Action = ActionUnchanged
			if !ownedByUs {
				// Equal text someone else wrote (or a shared owner): applying it makes it ours too.
				kr.Action = ActionInstalled
			}
		case ownedByUs:
			kr.Action = ActionUpdated
		case s.Recorded[key]:
			kr.Action, kr.Deleted, kr.Managers = ActionRepaired, !exists, others
		case !exists:
			kr.Action = ActionInstalled
		case overwrite:
			kr.Action, kr.Managers = ActionReplaced, others
		default:
			kr.Action, kr.Managers = ActionSkipped, others
		}
		if kr.Action != ActionSkipped {
			apply[key] = script
		}
		res.Keys = append(res.Keys, kr)
	}
	return res, apply
}

// Uninstall removes the keys this field manager owns and its annotation, keeping every other key
// (a key someone else has edited since is theirs, and stays).
func (in *Installer) Uninstall(ctx context.Context) error {
	cm, err := in.read(ctx)
	if err != nil {
		return err
	}
	if cm.ResourceVersion == "" {
		return nil
	}
	if _, err := in.apply(ctx, map[string]string{}); err != nil {
		return err
	}
	return nil
}

func (in *Installer) read(ctx context.Context) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := in.Reader.Get(ctx, types.NamespacedName{Namespace: in.Namespace, Name: ConfigMapName}, cm)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("read %s/%s: %w", in.Namespace, ConfigMapName, err)
	}
	if err != nil {
		return &corev1.ConfigMap{}, nil
	}
	return cm, nil
}

func (in *Installer) apply(ctx context.Context, data map[string]string) (*corev1.ConfigMap, error) {
	cfg := corev1apply.ConfigMap(ConfigMapName, in.Namespace).WithData(data)
	if len(data) > 0 {
		cfg = cfg.WithAnnotations(map[string]string{ProviderKeysAnnotation: recordValue(data)})
	}
	// Force: a key is applied only when it is new, ours, equal, or Overwrite allows it.
	if err := in.Writer.Apply(ctx, cfg, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("apply provider scripts to %s/%s: %w", in.Namespace, ConfigMapName, err)
	}
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = in.Namespace, ConfigMapName
	if err := in.Reader.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
		return nil, fmt.Errorf("read %s/%s after applying: %w", in.Namespace, ConfigMapName, err)
	}
	return cm, nil
}

// dropsOwnedKey reports whether applying data would drop a key our field manager owns (a provider
// no longer installed).
func dropsOwnedKey(owners map[string][]string, data map[string]string) bool {
	for key, managers := range owners {
		if _, kept := data[key]; !kept && slices.Contains(managers, FieldManager) {
			return true
		}
	}
	return false
}

func recordValue(data map[string]string) string {
	return strings.Join(slices.Sorted(maps.Keys(data)), ",")
}

func recordedKeys(annotations map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, k := range strings.Split(annotations[ProviderKeysAnnotation], ",") {
		if k = strings.TrimSpace(k); k != "" {
			out[k] = true
		}
	}
	return out
}

// keyOwners returns, for each data key, the field managers that own it according to managedFields.
func keyOwners(entries []metav1.ManagedFieldsEntry) (map[string][]string, error) {
	out := map[string][]string{}
	for _, e := range entries {
		if e.FieldsV1 == nil {
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(strings.NewReader(string(e.FieldsV1.Raw))); err != nil {
			return nil, fmt.Errorf("read managed fields of %s: %w", ConfigMapName, err)
		}
		set.Iterate(func(p fieldpath.Path) {
			if len(p) == 2 && p[0].FieldName != nil && *p[0].FieldName == "data" && p[1].FieldName != nil {
				key := *p[1].FieldName
				if !slices.Contains(out[key], e.Manager) {
					out[key] = append(out[key], e.Manager)
				}
			}
		})
	}
	return out, nil
}
