package trafficrouting

import (
	appsv1 "k8s.io/api/apps/v1"
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
	case "StatefulSet", "CloneSet":
		rev := podLabels[appsv1.ControllerRevisionHashLabelKey]
		if rev != "" && w.UpdateRevision != "" && w.UpdateRevision != w.CurrentRevision && rev == w.UpdateRevision {
			return RoleCanary
		}
	}
	return RoleStable
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

// LabelChanges compares a pod's current labels with the lane labels it should carry and returns
// the labels to set and the lane labels to remove.
func LabelChanges(current, desired map[string]string) (set map[string]string, remove []string) {
	set = map[string]string{}
	for k, v := range desired {
		if current[k] != v {
			set[k] = v
		}
	}
	for k := range current {
		if _, keep := desired[k]; !keep && IsLaneLabel(k) {
			remove = append(remove, k)
		}
	}
	return set, remove
}
