package trafficrouting

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
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
		"CloneSet update revision, short-hash label (CloneSetShortHash)": {
			labels: map[string]string{"controller-revision-hash": "7d9f8c6b5"}, workload: Workload{Kind: "CloneSet", UpdateRevision: "cs-7d9f8c6b5", CurrentRevision: "cs-5b6c7d8e9"}, releasing: true, want: RoleCanary,
		},
		"CloneSet current revision, short-hash label (CloneSetShortHash)": {
			labels: map[string]string{"controller-revision-hash": "5b6c7d8e9"}, workload: Workload{Kind: "CloneSet", UpdateRevision: "cs-7d9f8c6b5", CurrentRevision: "cs-5b6c7d8e9"}, releasing: true, want: RoleStable,
		},
		"CloneSet without revision label": {
			labels: map[string]string{}, workload: Workload{Kind: "CloneSet", UpdateRevision: "cs-2", CurrentRevision: "cs-1"}, releasing: true, want: RoleStable,
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
	gray := map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray"}
	tests := map[string]struct {
		labels    map[string]string
		managed   string
		originals string
		desired   map[string]string
		want      LabelChange
	}{
		"new canary pod": {
			labels: map[string]string{"app": "a"}, desired: gray,
			want: LabelChange{Set: gray, Managed: "alicloud.service.tag,opensergo.io/canary-gray"},
		},
		"already labelled by the pod template: not ours": {
			labels: map[string]string{"app": "a", "alicloud.service.tag": "gray"}, desired: gray,
			want: LabelChange{Set: map[string]string{"opensergo.io/canary-gray": "gray"}, Managed: "opensergo.io/canary-gray"},
		},
		"promoted: our labels go, the template's stay": {
			labels:  map[string]string{"alicloud.service.tag": "gray", "opensergo.io/canary-gray": "gray", "ASM_TRAFFIC_TAG": "x"},
			managed: "opensergo.io/canary-gray", desired: map[string]string{},
			want: LabelChange{Set: map[string]string{}, Remove: []string{"opensergo.io/canary-gray"}},
		},
		"steady state": {
			labels: gray, managed: "alicloud.service.tag,opensergo.io/canary-gray", desired: gray,
			want: LabelChange{Set: map[string]string{}, Managed: "alicloud.service.tag,opensergo.io/canary-gray"},
		},
		"a managed label removed by hand is forgotten": {
			labels: map[string]string{}, managed: "kruise-lanes.io/lane", desired: map[string]string{},
			want: LabelChange{Set: map[string]string{}},
		},
		"a template's own dialect label is taken over and its value kept": {
			labels:  map[string]string{"app": "a", "ASM_TRAFFIC_TAG": "base"},
			desired: map[string]string{"ASM_TRAFFIC_TAG": "gray"},
			want: LabelChange{Set: map[string]string{"ASM_TRAFFIC_TAG": "gray"}, Managed: "ASM_TRAFFIC_TAG",
				Originals: `{"ASM_TRAFFIC_TAG":"base"}`},
		},
		"promoted, base labels off: the template's value comes back": {
			labels:  map[string]string{"ASM_TRAFFIC_TAG": "gray"},
			managed: "ASM_TRAFFIC_TAG", originals: `{"ASM_TRAFFIC_TAG":"base"}`, desired: map[string]string{},
			want: LabelChange{Set: map[string]string{"ASM_TRAFFIC_TAG": "base"}, Restored: []string{"ASM_TRAFFIC_TAG"}},
		},
		"promoted, base labels on: the lane wants the original value, which is no longer ours": {
			labels:  map[string]string{"ASM_TRAFFIC_TAG": "gray"},
			managed: "ASM_TRAFFIC_TAG", originals: `{"ASM_TRAFFIC_TAG":"base"}`, desired: map[string]string{"ASM_TRAFFIC_TAG": "base"},
			want: LabelChange{Set: map[string]string{"ASM_TRAFFIC_TAG": "base"}, Restored: []string{"ASM_TRAFFIC_TAG"}},
		},
		"steady state of a taken-over label": {
			labels:  map[string]string{"ASM_TRAFFIC_TAG": "gray"},
			managed: "ASM_TRAFFIC_TAG", originals: `{"ASM_TRAFFIC_TAG":"base"}`, desired: map[string]string{"ASM_TRAFFIC_TAG": "gray"},
			want: LabelChange{Set: map[string]string{}, Managed: "ASM_TRAFFIC_TAG", Originals: `{"ASM_TRAFFIC_TAG":"base"}`},
		},
		"an edited originals annotation keeps nothing: the managed label is removed": {
			labels:  map[string]string{"ASM_TRAFFIC_TAG": "gray"},
			managed: "ASM_TRAFFIC_TAG", originals: `not json`, desired: map[string]string{},
			want: LabelChange{Set: map[string]string{}, Remove: []string{"ASM_TRAFFIC_TAG"}},
		},
		"an original of a label that is not managed is dropped": {
			labels:    map[string]string{"ASM_TRAFFIC_TAG": "base"},
			originals: `{"ASM_TRAFFIC_TAG":"x"}`, desired: map[string]string{},
			want: LabelChange{Set: map[string]string{}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			annotations := map[string]string{}
			if tc.managed != "" {
				annotations[ManagedLabelsAnnotation] = tc.managed
			}
			if tc.originals != "" {
				annotations[OriginalLabelsAnnotation] = tc.originals
			}
			got := LabelChanges(tc.labels, annotations, tc.desired)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// Applying the change reaches a fixed point: a second comparison finds nothing to do.
			p := &corev1.Pod{}
			p.Labels, p.Annotations = maps.Clone(tc.labels), annotations
			got.Apply(p)
			if again := LabelChanges(p.Labels, p.Annotations, tc.desired); !again.IsEmpty(p.Annotations) {
				t.Errorf("after applying, a second change is not empty: %+v", again)
			}
		})
	}
}
