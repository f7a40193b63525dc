package plugin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPlan(t *testing.T) {
	const (
		mse     = "lua.traffic.routing.ingress.mse"
		higress = "lua.traffic.routing.ingress.higress"
		ours    = "-- our script, this build\n"
	)
	scripts := map[string]string{mse: ours}
	for _, tc := range []struct {
		name      string
		state     State
		overwrite bool
		want      KeyResult
		applied   bool
	}{
		{name: "absent and never ours: installed", state: State{}, want: KeyResult{Key: mse, Action: ActionInstalled}, applied: true},
		{name: "ours with this build's text: unchanged",
			state: State{Data: map[string]string{mse: ours}, Owners: map[string][]string{mse: {FieldManager}}},
			want:  KeyResult{Key: mse, Action: ActionUnchanged}, applied: true},
		{name: "ours with an earlier build's text (an upgrade): updated",
			state: State{Data: map[string]string{mse: "-- older\n"}, Owners: map[string][]string{mse: {FieldManager}}},
			want:  KeyResult{Key: mse, Action: ActionUpdated}, applied: true},
		{name: "recorded as ours, edited by someone (ownership moved): repaired",
			state: State{Data: map[string]string{mse: "-- edited\n"}, Owners: map[string][]string{mse: {"kubectl-edit"}}, Recorded: map[string]bool{mse: true}},
			want:  KeyResult{Key: mse, Action: ActionRepaired, Managers: []string{"kubectl-edit"}}, applied: true},
		{name: "recorded as ours, deleted: repaired",
			state: State{Data: map[string]string{}, Recorded: map[string]bool{mse: true}},
			want:  KeyResult{Key: mse, Action: ActionRepaired, Deleted: true}, applied: true},
		{name: "someone else's key: skipped",
			state: State{Data: map[string]string{mse: "-- theirs\n"}, Owners: map[string][]string{mse: {"platform-team"}}},
			want:  KeyResult{Key: mse, Action: ActionSkipped, Managers: []string{"platform-team"}}},
		{name: "someone else's key, overwrite allowed: replaced",
			state:     State{Data: map[string]string{mse: "-- theirs\n"}, Owners: map[string][]string{mse: {"platform-team"}}},
			overwrite: true,
			want:      KeyResult{Key: mse, Action: ActionReplaced, Managers: []string{"platform-team"}}, applied: true},
		{name: "someone else wrote our exact text: taken into our ownership",
			state: State{Data: map[string]string{mse: ours}, Owners: map[string][]string{mse: {"platform-team"}}},
			want:  KeyResult{Key: mse, Action: ActionInstalled}, applied: true},
		{name: "another key recorded as ours does not make this one ours",
			state: State{Data: map[string]string{mse: "-- theirs\n"}, Owners: map[string][]string{mse: {"platform-team"}}, Recorded: map[string]bool{higress: true}},
			want:  KeyResult{Key: mse, Action: ActionSkipped, Managers: []string{"platform-team"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, apply := Plan(tc.state, scripts, tc.overwrite)
			if diff := cmp.Diff([]KeyResult{tc.want}, res.Keys); diff != "" {
				t.Errorf("Plan result (-want +got):\n%s", diff)
			}
			if got, ok := apply[mse]; ok != tc.applied || (ok && got != ours) {
				t.Errorf("applied %q (present %v), want present %v with our script", got, ok, tc.applied)
			}
			for k := range apply {
				if _, ours := scripts[k]; !ours {
					t.Errorf("applied key %q that is not one of our scripts", k)
				}
			}
		})
	}
}

func TestKeyOwners(t *testing.T) {
	entries := []metav1.ManagedFieldsEntry{
		{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{"f:lua.traffic.routing.ingress.mse":{}},"f:metadata":{"f:annotations":{"f:kruise-lanes.io/provider-keys":{}}}}`)}},
		{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{".":{},"f:lua.traffic.routing.ingress.higress":{},"f:note":{}}}`)}},
	}
	got, err := keyOwners(entries)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"lua.traffic.routing.ingress.mse":     {FieldManager},
		"lua.traffic.routing.ingress.higress": {"kubectl-edit"},
		"note":                                {"kubectl-edit"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keyOwners (-want +got):\n%s", diff)
	}
	if _, err := keyOwners([]metav1.ManagedFieldsEntry{{Manager: "x", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{`)}}}); err == nil {
		t.Error("keyOwners accepted malformed managedFields")
	}
}
