package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kruise-lanes/kruise-lanes/plugin"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// providerReconciler keeps our scripts in Kruise's ConfigMap: it runs the installer when the
// manager starts leading and on every change of the ConfigMap, so a key someone deletes or edits is
// put back within moments, and reports what it did as Events on the ConfigMap.
type providerReconciler struct {
	installer *plugin.Installer
	recorder  record.EventRecorder
	// skipped is the last set of skipped keys reported, so an unchanged refusal is not repeated
	// on every change of the ConfigMap.
	skipped string
}

// SetupWithManager registers the reconciler. Controllers run on the leader only, so only the
// leader writes the ConfigMap.
func (p *providerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	key := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.installer.Namespace, Name: plugin.ConfigMapName}}
	isKruiseConfig := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == key.Namespace && o.GetName() == key.Name
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("providers").
		For(&corev1.ConfigMap{}, builder.WithPredicates(isKruiseConfig)).
		// The ConfigMap may not exist yet: install once at start whatever the informer holds.
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(key)
			return nil
		})).
		Complete(p)
}

// Reconcile installs or repairs the providers. An error (Kruise's namespace missing, the API
// server unreachable) is retried with backoff.
func (p *providerReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx).WithName("providers")
	cm, res, err := p.installer.Install(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	if res.Changed() {
		log.Info("providers written", "result", res.Keys)
	}
	p.report(cm, res)
	return reconcile.Result{}, nil
}

func (p *providerReconciler) report(cm *corev1.ConfigMap, res plugin.InstallResult) {
	if installed := res.With(plugin.ActionInstalled, plugin.ActionUpdated); len(installed) > 0 {
		p.recorder.Eventf(cm, corev1.EventTypeNormal, "ProvidersInstalled", "Kruise Lanes installed this build's scripts: %s", describeKeys(installed))
	}
	if repaired := res.With(plugin.ActionRepaired); len(repaired) > 0 {
		p.recorder.Eventf(cm, corev1.EventTypeWarning, "ProvidersRepaired", "Kruise Lanes put back its scripts: %s (to use another script for a class, leave it out of --providers)", describeKeys(repaired))
	}
	if replaced := res.With(plugin.ActionReplaced); len(replaced) > 0 {
		p.recorder.Eventf(cm, corev1.EventTypeWarning, "ProvidersReplaced", "Kruise Lanes replaced keys someone else had set, as --overwrite-providers allows: %s", describeKeys(replaced))
	}
	skipped := res.With(plugin.ActionSkipped)
	if s := describeKeys(skipped); s != p.skipped {
		p.skipped = s
		if len(skipped) > 0 {
			p.recorder.Eventf(cm, corev1.EventTypeWarning, "ProvidersSkipped", "Kruise Lanes left keys someone else set untouched: %s; Kruise runs that script for these classes, not ours (allow --overwrite-providers to replace them)", s)
		}
	}
}

// describeKeys names each key with what happened to it.
func describeKeys(keys []plugin.KeyResult) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		switch {
		case k.Action == plugin.ActionUpdated:
			parts = append(parts, k.Key+" (updated from an earlier build)")
		case k.Deleted:
			parts = append(parts, k.Key+" (deleted by someone else)")
		case len(k.Managers) > 0 && k.Action == plugin.ActionRepaired:
			parts = append(parts, fmt.Sprintf("%s (changed by %s)", k.Key, strings.Join(k.Managers, ", ")))
		case len(k.Managers) > 0:
			parts = append(parts, fmt.Sprintf("%s (set by %s)", k.Key, strings.Join(k.Managers, ", ")))
		default:
			parts = append(parts, k.Key)
		}
	}
	return strings.Join(parts, ", ")
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
			if err := (&plugin.Installer{Reader: c, Writer: c, Namespace: o.KruiseNamespace}).Uninstall(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed Kruise Lanes providers from %s/%s\n", o.KruiseNamespace, plugin.ConfigMapName)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.KruiseNamespace, "kruise-namespace", o.KruiseNamespace, "namespace of Kruise's kruise-rollout-configuration ConfigMap")
	return cmd
}
