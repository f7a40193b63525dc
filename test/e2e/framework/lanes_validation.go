//go:build e2e

package framework

import (
	"context"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names of the lane validator's configuration in the suite.
const (
	LanesValidatingConfigName = "lanes-e2e-validating-webhook-configuration"
	lanesValidatePath         = "/validate-lane"
)

// StartLanesManagerWithValidation runs lanes-manager (StartLanesManager) with its lane validator
// enabled and a ValidatingWebhookConfiguration with the chart's policy (TrafficRoutings and
// Rollouts, CREATE and UPDATE, failurePolicy Ignore, sideEffects None) that sends it only the
// objects of namespace. The manager's certificate rotator fills in the caBundle; it returns once
// that is in place. The configuration is deleted when the test ends, before the manager stops.
func (c *Cluster) StartLanesManagerWithValidation(t testing.TB, namespace string, extraArgs ...string) *LanesManager {
	t.Helper()
	ctx := t.Context()
	m := c.StartLanesManager(t, append([]string{"--validating-webhook-configuration=" + LanesValidatingConfigName}, extraArgs...)...)
	url := fmt.Sprintf("https://localhost:%d%s", m.WebhookPort, lanesValidatePath)
	rule := func(version string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{"rollouts.kruise.io"}, APIVersions: []string{version}, Resources: resources,
				Scope: ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}
	}
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: LanesValidatingConfigName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "lanes.lanes.kruise-lanes.io",
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			MatchPolicy:             ptr.To(admissionregistrationv1.Exact),
			TimeoutSeconds:          ptr.To[int32](5),
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules:                   []admissionregistrationv1.RuleWithOperations{rule("v1alpha1", "trafficroutings", "rollouts"), rule("v1beta1", "rollouts")},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: []string{namespace},
			}}},
		}},
	}
	_ = c.Client.Delete(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: LanesValidatingConfigName}})
	if err := c.Client.Create(ctx, cfg); err != nil {
		t.Fatalf("creating %s: %v", LanesValidatingConfigName, err)
	}
	t.Cleanup(func() {
		err := c.Client.Delete(context.Background(), cfg)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s: %v", LanesValidatingConfigName, err)
		}
	})
	err := WaitFor(ctx, 60*time.Second, "the lane validator's caBundle injected", func(ctx context.Context) (bool, error) {
		got := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := c.Client.Get(ctx, client.ObjectKey{Name: LanesValidatingConfigName}, got); err != nil {
			return false, err
		}
		return len(got.Webhooks) == 1 && len(got.Webhooks[0].ClientConfig.CABundle) > 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
