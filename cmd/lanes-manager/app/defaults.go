package app

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1apply "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// defaultsFieldManager owns the defaults ConfigMap's fields.
const defaultsFieldManager = "kruise-lanes-defaults"

// defaultsPublisher server-side-applies the lane defaults the manager resolves lanes with into
// ConfigMap kruise-lanes-defaults of the manager's namespace, where kubectl lanes reads them.
// Only the leader writes it; it retries until the API server takes it.
type defaultsPublisher struct {
	client    client.Client
	namespace string
	defaults  trafficrouting.Defaults
	log       logr.Logger
}

// NeedLeaderElection: only the leader writes the ConfigMap.
func (p *defaultsPublisher) NeedLeaderElection() bool { return true }

// Start publishes the defaults once, retrying every few seconds until it succeeds or the manager
// stops.
func (p *defaultsPublisher) Start(ctx context.Context) error {
	// PollUntilContextCancel fails only when the manager stops.
	_ = wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := p.publish(ctx); err != nil {
			p.log.Error(err, "publishing the lane defaults; retrying")
			return false, nil
		}
		p.log.Info("published the lane defaults", "configMap", p.namespace+"/"+trafficrouting.DefaultsConfigMapName)
		return true, nil
	})
	return nil
}

func (p *defaultsPublisher) publish(ctx context.Context) error {
	cm := corev1apply.ConfigMap(trafficrouting.DefaultsConfigMapName, p.namespace).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "kruise-lanes"}).
		WithData(p.defaults.ConfigMapData())
	if err := p.client.Apply(ctx, cm, client.FieldOwner(defaultsFieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ConfigMap %s/%s: %w", p.namespace, trafficrouting.DefaultsConfigMapName, err)
	}
	return nil
}
