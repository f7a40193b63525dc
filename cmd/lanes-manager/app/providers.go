package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/plugin"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// providerInstaller applies our scripts into Kruise's ConfigMap once the manager leads, retrying
// until it succeeds (Kruise's namespace may appear after us).
type providerInstaller struct {
	installer *plugin.Installer
	recorder  record.EventRecorder
}

// NeedLeaderElection: only the leader writes the ConfigMap.
func (p *providerInstaller) NeedLeaderElection() bool { return true }

// Start installs the providers and reports what it did as Events on the ConfigMap.
func (p *providerInstaller) Start(ctx context.Context) error {
	log := ctrl.Log.WithName("provider-installer")
	var res plugin.InstallResult
	err := wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		res, err = p.installer.Install(ctx)
		if err != nil {
			log.Error(err, "installing providers; retrying")
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil // the manager is stopping
	}
	ref := &corev1.ConfigMap{}
	ref.Namespace, ref.Name = p.installer.Namespace, plugin.ConfigMapName
	if err := p.installer.Client.Get(ctx, client.ObjectKeyFromObject(ref), ref); err == nil {
		if len(res.Installed) > 0 {
			p.recorder.Eventf(ref, corev1.EventTypeNormal, "ProvidersInstalled", "Kruise Lanes installed %s", strings.Join(res.Installed, ", "))
		}
		if len(res.Replaced) > 0 {
			p.recorder.Eventf(ref, corev1.EventTypeWarning, "ProvidersReplaced", "Kruise Lanes replaced keys someone else had set: %s", strings.Join(res.Replaced, ", "))
		}
		if len(res.Skipped) > 0 {
			p.recorder.Eventf(ref, corev1.EventTypeWarning, "ProvidersSkipped", "Kruise Lanes left keys someone else set untouched: %s (allow --overwrite-providers to replace them)", strings.Join(res.Skipped, ", "))
		}
	}
	log.Info("providers installed", "installed", res.Installed, "replaced", res.Replaced, "skipped", res.Skipped)
	<-ctx.Done()
	return nil
}

// newRemoveProvidersCommand removes our keys from Kruise's ConfigMap (the chart's pre-delete hook).
func newRemoveProvidersCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "remove-providers",
		Short: "Remove the provider scripts Kruise Lanes installed from Kruise's ConfigMap, keeping every other key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scheme, err := trafficrouting.NewScheme()
			if err != nil {
				return err
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("load kubeconfig: %w", err)
			}
			c, err := client.New(cfg, client.Options{Scheme: scheme})
			if err != nil {
				return fmt.Errorf("create client: %w", err)
			}
			if err := (&plugin.Installer{Client: c, Namespace: o.KruiseNamespace}).Uninstall(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed Kruise Lanes providers from %s/%s\n", o.KruiseNamespace, plugin.ConfigMapName)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.KruiseNamespace, "kruise-namespace", o.KruiseNamespace, "namespace of Kruise's kruise-rollout-configuration ConfigMap")
	return cmd
}
