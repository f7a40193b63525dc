package trafficrouting

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoleOf(t *testing.T) {
	tests := map[string]struct {
		labels    map[string]string
		workload  Workload
		releasing bool
		want      Role
	}{
		"extra-workload canary Deployment": {
			labels: map[string]string{"pod-template-hash": "abc"}, workload: Workload{Kind: "Deployment", ExtraCanary: true}, releasing: true, want: RoleCanary,
		},
		"partition Deployment, new hash": {
			labels: map[string]string{"pod-template-hash": "new"}, workload: Workload{Kind: "Deployment", StableRevision: "old"}, releasing: true, want: RoleCanary,
		},
		"partition Deployment, stable hash": {
			labels: map[string]string{"pod-template-hash": "old"}, workload: Workload{Kind: "Deployment", StableRevision: "old"}, releasing: true, want: RoleStable,
		},
		"Deployment without stable-revision (extra-workload stable side)": {
			labels: map[string]string{"pod-template-hash": "x"}, workload: Workload{Kind: "Deployment"}, releasing: true, want: RoleStable,
		},
		"partition Deployment after the release": {
			labels: map[string]string{"pod-template-hash": "new"}, workload: Workload{Kind: "Deployment", StableRevision: "old"}, releasing: false, want: RoleStable,
		},
		"StatefulSet update revision": {
			labels: map[string]string{"controller-revision-hash": "web-2"}, workload: Workload{Kind: "StatefulSet", UpdateRevision: "web-2", CurrentRevision: "web-1"}, releasing: true, want: RoleCanary,
		},
		"StatefulSet current revision": {
			labels: map[string]string{"controller-revision-hash": "web-1"}, workload: Workload{Kind: "StatefulSet", UpdateRevision: "web-2", CurrentRevision: "web-1"}, releasing: true, want: RoleStable,
		},
		"CloneSet promoted: update equals current": {
			labels: map[string]string{"controller-revision-hash": "cs-2"}, workload: Workload{Kind: "CloneSet", UpdateRevision: "cs-2", CurrentRevision: "cs-2"}, releasing: true, want: RoleStable,
		},
		"CloneSet update revision": {
			labels: map[string]string{"controller-revision-hash": "cs-2"}, workload: Workload{Kind: "CloneSet", UpdateRevision: "cs-2", CurrentRevision: "cs-1"}, releasing: true, want: RoleCanary,
		},
		"pod without revision label": {
			labels: map[string]string{}, workload: Workload{Kind: "StatefulSet", UpdateRevision: "web-2", CurrentRevision: "web-1"}, releasing: true, want: RoleStable,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RoleOf(tc.labels, tc.workload, tc.releasing); got != tc.want {
				t.Errorf("RoleOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLabelChanges(t *testing.T) {
	current := map[string]string{"app": "a", "alicloud.service.tag": "gray", "opensergo.io/canary-old": "old", "ASM_TRAFFIC_TAG": "base"}
	desired := map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}
	set, remove := LabelChanges(current, desired)
	sort.Strings(remove)
	if diff := cmp.Diff(map[string]string{"opensergo.io/canary-gray": "gray"}, set); diff != "" {
		t.Errorf("set (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ASM_TRAFFIC_TAG", "opensergo.io/canary-old"}, remove); diff != "" {
		t.Errorf("remove (-want +got):\n%s", diff)
	}
}
