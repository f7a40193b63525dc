package laneops

import (
	"context"
	"testing"

	"github.com/openkruise/rollouts/api/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// kruiseStates plays Kruise's side of an approval: after each approval patch, the Rollout reads
// back as the next states in turn (the last one sticks).
type kruiseStates struct {
	afterSend [][]v1beta1.CanaryStepState
	sent      int
	reads     int
}

func (k *kruiseStates) client(t *testing.T, ro *v1beta1.Rollout) client.Client {
	t.Helper()
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(ro).WithStatusSubresource(ro).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				k.sent++
				k.reads = 0
				return nil
			},
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if err := c.Get(ctx, key, obj, opts...); err != nil {
					return err
				}
				r, ok := obj.(*v1beta1.Rollout)
				if !ok || k.sent == 0 {
					return nil
				}
				states := k.afterSend[min(k.sent, len(k.afterSend))-1]
				state := states[min(k.reads, len(states)-1)]
				k.reads++
				if state == "next" {
					r.Status.CanaryStatus.CurrentStepIndex++
					r.Status.CanaryStatus.CurrentStepState = v1beta1.CanaryStepStateUpgrade
					return nil
				}
				r.Status.CanaryStatus.CurrentStepState = state
				return nil
			},
		}).Build()
}

func pausedRollout() *v1beta1.Rollout {
	return &v1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollout-a"},
		Status: v1beta1.RolloutStatus{CanaryStatus: &v1beta1.CanaryStatus{
			CommonStatus: v1beta1.CommonStatus{CurrentStepIndex: 1, CurrentStepState: v1beta1.CanaryStepStatePaused},
		}},
	}
}

func TestApproveResendsWhenKruiseOverwritesIt(t *testing.T) {
	tests := map[string]struct {
		afterSend [][]v1beta1.CanaryStepState
		wantSent  int
		wantErr   bool
	}{
		"taken at once": {afterSend: [][]v1beta1.CanaryStepState{{"next"}}, wantSent: 1},
		// Kruise overwrote the approval before acting on it.
		"overwritten to StepPaused": {afterSend: [][]v1beta1.CanaryStepState{{v1beta1.CanaryStepStatePaused}, {"next"}}, wantSent: 2},
		// Read back as StepReady, then overwritten: StepReady is not yet taken.
		"StepReady, then overwritten": {
			afterSend: [][]v1beta1.CanaryStepState{{v1beta1.CanaryStepStateReady, v1beta1.CanaryStepStatePaused}, {v1beta1.CanaryStepStateReady, "next"}},
			wantSent:  2,
		},
		"the last step completes at the same index": {afterSend: [][]v1beta1.CanaryStepState{{v1beta1.CanaryStepStateReady, v1beta1.CanaryStepStateCompleted}}, wantSent: 1},
		"never taken": {afterSend: [][]v1beta1.CanaryStepState{{v1beta1.CanaryStepStatePaused}}, wantSent: 4, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			k := &kruiseStates{afterSend: tc.afterSend}
			ro := pausedRollout()
			c := k.client(t, ro.DeepCopy())
			err := Approve(t.Context(), c, ro)
			if (err != nil) != tc.wantErr {
				t.Fatalf("approve: %v, want error %v", err, tc.wantErr)
			}
			if k.sent != tc.wantSent {
				t.Errorf("approvals sent %d, want %d", k.sent, tc.wantSent)
			}
		})
	}
}
