package trafficrouting

import (
	"encoding/json"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Role is what a pod is to the lane of its workload's Rollout.
type Role string

// Roles.
const (
	// RoleNone: the pod belongs to no lane member (or its Rollout is not releasing).
	RoleNone Role = ""
	// RoleStable: a pod of the stable (base) revision of a lane member.
	RoleStable Role = "stable"
	// RoleCanary: a pod of the canary revision of a lane member that is releasing.
	RoleCanary Role = "canary"
)

// Kruise's markers of canary workloads and revisions.
const (
	// CanaryDeploymentLabel marks the extra canary Deployment Kruise creates for
	// enableExtraWorkloadForCanary; its value is the stable Deployment's name.
	CanaryDeploymentLabel = "rollouts.kruise.io/canary-deployment"
	// StableRevisionLabel on a partition-style Deployment is the pod-template-hash of its stable pods.
	StableRevisionLabel = "rollouts.kruise.io/stable-revision"
)

// Workload is what a pod's controlling workload says about revisions, gathered from the cache.
type Workload struct {
	// Kind is Deployment, StatefulSet or CloneSet.
	Kind string
	// ExtraCanary is true when the pod belongs to Kruise's extra canary Deployment.
	ExtraCanary bool
	// StableRevision is a Deployment's rollouts.kruise.io/stable-revision label.
	StableRevision string
	// UpdateRevision and CurrentRevision are a StatefulSet's or CloneSet's status revisions.
	UpdateRevision  string
	CurrentRevision string
	// Selector is the workload's pod selector (nil: none); lane labels never change a label it
	// matches on. It may be the cached workload's own (see Resolver): read it, never write to it.
	Selector *metav1.LabelSelector
}

// RoleOf decides whether a pod is the canary or the stable version of a lane member's workload.
// releasing is true while the member's Rollout is progressing; outside a release every pod is
// stable, whatever revision markers remain on the workload.
func RoleOf(podLabels map[string]string, w Workload, releasing bool) Role {
	if !releasing {
		return RoleStable
	}
	switch w.Kind {
	case "Deployment":
		if w.ExtraCanary {
			return RoleCanary
		}
		hash := podLabels[appsv1.DefaultDeploymentUniqueLabelKey]
		if w.StableRevision != "" && hash != "" && hash != w.StableRevision {
			return RoleCanary
		}
	case "StatefulSet":
		rev := podLabels[appsv1.ControllerRevisionHashLabelKey]
		if rev != "" && w.UpdateRevision != "" && w.UpdateRevision != w.CurrentRevision && rev == w.UpdateRevision {
			return RoleCanary
		}
	case "CloneSet":
		// A CloneSet's pods carry its revision name "<cloneset>-<hash>", or only "<hash>" when
		// OpenKruise runs with the CloneSetShortHash feature gate; OpenKruise compares by the hash.
		rev := shortHash(podLabels[appsv1.ControllerRevisionHashLabelKey])
		update, current := shortHash(w.UpdateRevision), shortHash(w.CurrentRevision)
		if rev != "" && update != "" && update != current && rev == update {
			return RoleCanary
		}
	}
	return RoleStable
}

// shortHash is the hash part of a revision name: what follows its last '-'.
func shortHash(revision string) string {
	return revision[strings.LastIndex(revision, "-")+1:]
}

// DesiredLabels are the lane labels a pod with the given role carries; nil for RoleNone.
func (l Lane) DesiredLabels(role Role) map[string]string {
	switch role {
	case RoleCanary:
		return l.CanaryLabels()
	case RoleStable:
		return l.StableLabels()
	}
	return nil
}

// ManagedLabelsAnnotation on a pod lists the lane labels Kruise Lanes put there; only those are
// ever removed or changed back, so a label a user or a pod template set is never taken away.
const ManagedLabelsAnnotation = AnnotationPrefix + "managed-labels"

// OriginalLabelsAnnotation on a pod keeps, as a JSON object, the values that labels had before
// Kruise Lanes gave them the lane's value (a pod template's own ASM_TRAFFIC_TAG: base, say). When
// the lane no longer wants such a label, it gets its original value back instead of being removed.
const OriginalLabelsAnnotation = AnnotationPrefix + "original-labels"

// LabelChange is what to do to a pod's labels to reach its lane labels.
type LabelChange struct {
	// Set are labels to add or change (a lane value, or an original value given back).
	Set map[string]string
	// Remove are labels to delete (only ones Kruise Lanes added).
	Remove []string
	// Managed is the new value of ManagedLabelsAnnotation ("" when nothing is managed).
	Managed string
	// Originals is the new value of OriginalLabelsAnnotation ("" when nothing is kept).
	Originals string
	// Restored are the labels in Set that get their original value back.
	Restored []string
}

// IsEmpty reports whether the change changes nothing on an object with these annotations.
func (c LabelChange) IsEmpty(annotations map[string]string) bool {
	return len(c.Set) == 0 && len(c.Remove) == 0 &&
		c.Managed == annotations[ManagedLabelsAnnotation] && c.Originals == annotations[OriginalLabelsAnnotation]
}

// LabelChanges compares a pod's labels and bookkeeping annotations with the lane labels it should
// carry. A label already present with the desired value is left unmanaged (someone else put it
// there). A label present with another value that is not ours is taken over, and its value kept in
// OriginalLabelsAnnotation. A managed label the lane no longer wants gets its original value back,
// or is removed if it had none; once a label is back at its original value it is no longer managed.
func LabelChanges(labels, annotations, desired map[string]string) LabelChange {
	managed := map[string]bool{}
	for k := range strings.SplitSeq(annotations[ManagedLabelsAnnotation], ",") {
		if k = strings.TrimSpace(k); k != "" {
			managed[k] = true
		}
	}
	originals := parseOriginals(annotations[OriginalLabelsAnnotation])
	for k := range originals {
		if !managed[k] {
			delete(originals, k) // bookkeeping of a label no longer ours
		}
	}
	change := LabelChange{Set: make(map[string]string, len(desired))}
	keep := make([]string, 0, len(desired)+len(managed))
	for k, v := range desired {
		current, present := labels[k]
		if orig, ok := originals[k]; ok && orig == v {
			// The lane now wants the label's original value: give it back and let it go.
			if current != v {
				change.Set[k] = v
				change.Restored = append(change.Restored, k)
			}
			delete(originals, k)
			continue
		}
		switch {
		case current != v:
			if present && !managed[k] {
				if originals == nil {
					originals = map[string]string{}
				}
				originals[k] = current
			}
			change.Set[k] = v
			keep = append(keep, k)
		case managed[k]:
			keep = append(keep, k)
		}
	}
	for k := range managed {
		if _, ok := desired[k]; ok {
			continue
		}
		current, present := labels[k]
		if orig, ok := originals[k]; ok {
			if current != orig {
				change.Set[k] = orig
				change.Restored = append(change.Restored, k)
			}
			delete(originals, k)
			continue
		}
		if present {
			change.Remove = append(change.Remove, k)
		}
	}
	slices.Sort(keep)
	slices.Sort(change.Remove)
	slices.Sort(change.Restored)
	change.Managed = strings.Join(keep, ",")
	change.Originals = formatOriginals(originals)
	return change
}

// parseOriginals reads OriginalLabelsAnnotation (nil when it is absent); a value that is not a
// JSON object of strings (someone edited it) keeps nothing, so the labels it named are then
// removed like any other.
func parseOriginals(s string) map[string]string {
	if s == "" {
		return nil
	}
	out := map[string]string{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil
	}
	return out
}

func formatOriginals(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // a map of strings always encodes, with sorted keys
	return string(b)
}

// Apply makes the change on an object's labels and bookkeeping annotations.
func (c LabelChange) Apply(obj metav1.Object) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range c.Set {
		labels[k] = v
	}
	for _, k := range c.Remove {
		delete(labels, k)
	}
	obj.SetLabels(labels)
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	for _, a := range c.Annotations() {
		if a.Remove {
			delete(annotations, a.Key)
		} else {
			annotations[a.Key] = a.Value
		}
	}
	obj.SetAnnotations(annotations)
}

// Bookkeeping is one bookkeeping annotation as a change leaves it: set to Value, or removed.
type Bookkeeping struct {
	Key, Value string
	Remove     bool
}

// Annotations are the bookkeeping annotations the change sets or removes, in key order.
func (c LabelChange) Annotations() [2]Bookkeeping {
	return [2]Bookkeeping{
		{Key: ManagedLabelsAnnotation, Value: c.Managed, Remove: c.Managed == ""},
		{Key: OriginalLabelsAnnotation, Value: c.Originals, Remove: c.Originals == ""},
	}
}
