package trafficrouting

import (
	"sort"
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
// ever removed, so a label a user or a pod template set is never taken away.
const ManagedLabelsAnnotation = AnnotationPrefix + "managed-labels"

// LabelChange is what to do to a pod's labels to reach its lane labels.
type LabelChange struct {
	// Set are labels to add or change.
	Set map[string]string
	// Remove are labels to delete (only ones Kruise Lanes manages).
	Remove []string
	// Managed is the new value of ManagedLabelsAnnotation ("" when nothing is managed).
	Managed string
}

// IsEmpty reports whether the change changes nothing.
func (c LabelChange) IsEmpty(currentManaged string) bool {
	return len(c.Set) == 0 && len(c.Remove) == 0 && c.Managed == currentManaged
}

// LabelChanges compares a pod's labels and managed-labels annotation with the lane labels it
// should carry. Labels already present with the desired value are left unmanaged (someone else
// put them there); managed labels no longer desired are removed.
func LabelChanges(labels map[string]string, managedAnnotation string, desired map[string]string) LabelChange {
	managed := map[string]bool{}
	for _, k := range strings.Split(managedAnnotation, ",") {
		if k = strings.TrimSpace(k); k != "" {
			managed[k] = true
		}
	}
	change := LabelChange{Set: map[string]string{}}
	var keep []string
	for k, v := range desired {
		switch {
		case labels[k] != v:
			change.Set[k] = v
			keep = append(keep, k)
		case managed[k]:
			keep = append(keep, k)
		}
	}
	for k := range managed {
		if _, ok := desired[k]; !ok {
			if _, present := labels[k]; present {
				change.Remove = append(change.Remove, k)
			}
		}
	}
	sort.Strings(keep)
	sort.Strings(change.Remove)
	change.Managed = strings.Join(keep, ",")
	return change
}

// Apply makes the change on an object's labels and managed-labels annotation.
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
	if c.Managed == "" {
		delete(annotations, ManagedLabelsAnnotation)
	} else {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[ManagedLabelsAnnotation] = c.Managed
	}
	obj.SetAnnotations(annotations)
}
