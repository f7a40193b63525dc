package trafficrouting

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PodWebhookName is the name of our pod webhook inside its MutatingWebhookConfiguration.
const PodWebhookName = "pods.lanes.kruise-lanes.io"

// NamespaceScope says which namespaces Kruise Lanes labels pods in: those the API server sends to
// the pod webhook, by the namespaceSelector of that webhook in our MutatingWebhookConfiguration.
// Reading the selector from the configuration itself keeps one source of truth: the reconciler
// never labels a pod in a namespace the webhook was told to leave alone.
type NamespaceScope struct {
	// Reader reads the MutatingWebhookConfiguration and Namespaces (a cache).
	Reader client.Reader
	// WebhookConfiguration is the name of our MutatingWebhookConfiguration.
	WebhookConfiguration string
}

// Serves reports whether pods of namespace are in scope. Without a configuration (not installed
// yet, or a manager run without one) every namespace is served, as the webhook's own default.
func (s *NamespaceScope) Serves(ctx context.Context, namespace string) (bool, error) {
	if s == nil || s.WebhookConfiguration == "" {
		return true, nil
	}
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Name: s.WebhookConfiguration}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("read webhook configuration %s: %w", s.WebhookConfiguration, err)
	}
	var selector *metav1.LabelSelector
	found := false
	for i := range cfg.Webhooks {
		if cfg.Webhooks[i].Name == PodWebhookName {
			selector, found = cfg.Webhooks[i].NamespaceSelector, true
		}
	}
	if !found || selector == nil {
		return true, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return false, fmt.Errorf("webhook configuration %s has an invalid namespaceSelector: %w", s.WebhookConfiguration, err)
	}
	ns := &corev1.Namespace{}
	if err := s.Reader.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	// The API server matches the automatic kubernetes.io/metadata.name label too; it is always set.
	nsLabels := labels.Set(ns.Labels)
	if _, ok := nsLabels[corev1.LabelMetadataName]; !ok {
		nsLabels = labels.Merge(nsLabels, labels.Set{corev1.LabelMetadataName: namespace})
	}
	return sel.Matches(nsLabels), nil
}
