package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/cmd/internal/version"
	"github.com/kruise-lanes/kruise-lanes/plugin"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/webhook"
)

// NewCommand builds lanes-manager's cobra command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	zapOpts := &zap.Options{}
	cmd := &cobra.Command{
		Use:          "lanes-manager",
		Short:        "Kruise Lanes: lane-label webhook and controllers",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		Version:      version.Get().String(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			logger := zap.New(zap.UseFlagOptions(zapOpts))
			ctrl.SetLogger(logger)
			klog.SetLogger(logger)
			return run(cmd.Context(), o)
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().AddGoFlagSet(flagSetFor(zapOpts))
	cmd.SetVersionTemplate("lanes-manager {{.Version}}\n")
	cmd.AddCommand(newRemoveProvidersCommand())
	return cmd
}

// ensureCertSecret creates the (empty) Secret the certificate rotator fills, when it is missing:
// the rotator only updates an existing Secret.
func ensureCertSecret(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, key types.NamespacedName) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := c.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create certificate Secret %s: %w", key, err)
	}
	return nil
}

// cacheOptions configure the manager's informer cache. Every object is stored as
// trafficrouting.CacheTransform trims it: Pods as metadata only (the label reconciler's metadata
// informer; the mesh route reconciler caches its lane pods itself), of ReplicaSets and workloads
// only what Kruise Lanes reads, of everything else all but managedFields (the provider installer reads those from
// the API server). With --watch-namespaces the kinds whose number follows the pods' (Pods,
// ReplicaSets, Deployments, StatefulSets, CloneSets) are cached from those namespaces only; the
// chart then restricts the pod webhook's namespaceSelector to them, so no pod the webhook serves
// is outside the cache. The webhook's namespaceSelector itself cannot scope the informers: it
// selects namespaces by labels that may change at any time, and an informer's namespaces are
// fixed when it starts.
func cacheOptions(o *Options, cloneSets bool) cache.Options {
	opts := cache.Options{
		DefaultTransform: trafficrouting.CacheTransform,
		ByObject: map[client.Object]cache.ByObject{
			// The provider installer watches Kruise's ConfigMap, and only it: the chart grants
			// configmaps only by that name in Kruise's namespace.
			&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{o.KruiseNamespace: {
				FieldSelector: fields.OneTermEqualSelector("metadata.name", plugin.ConfigMapName),
			}}},
		},
	}
	namespaces := trafficrouting.CacheNamespaces(o.WatchedNamespaces())
	if namespaces == nil {
		return opts
	}
	scoped := []client.Object{&corev1.Pod{}, &appsv1.ReplicaSet{}, &appsv1.Deployment{}, &appsv1.StatefulSet{}}
	if cloneSets {
		scoped = append(scoped, trafficrouting.CloneSetKind.New())
	}
	for _, obj := range scoped {
		opts.ByObject[obj] = cache.ByObject{Namespaces: namespaces}
	}
	return opts
}

func run(ctx context.Context, o *Options) error {
	log := ctrl.Log.WithName("setup")
	defaults, err := o.Defaults()
	if err != nil {
		return err
	}
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		return err
	}
	if err := lanesv1alpha1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("build scheme: %w", err)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	// Whether CloneSets are served decides which informers the cache configures, so the API
	// server's kinds are looked up before the manager is built, with the mapper it then uses.
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("build the API server's HTTP client: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return fmt.Errorf("discover the API server's kinds: %w", err)
	}
	_, mapErr := mapper.RESTMapping(trafficrouting.CloneSetGVK.GroupKind(), trafficrouting.CloneSetGVK.Version)
	cloneSets := mapErr == nil
	log.Info("workload kinds", "cloneSets", cloneSets)
	leNamespace := o.LeaderElectionNS
	if leNamespace == "" {
		leNamespace = o.Namespace
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		MapperProvider:          func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil },
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "lanes-manager.kruise-lanes.io",
		LeaderElectionNamespace: leNamespace,
		WebhookServer:           crwebhook.NewServer(crwebhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.CertDir}),
		// Mesh objects (VirtualServices, HTTPRoutes...) are read as unstructured; reading them from
		// the informers the mesh route reconciler starts anyway spares the API server a GET per
		// object per reconcile.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Cache:  cacheOptions(o, cloneSets),
		// Pods are read as metadata only from this cache (the mesh route reconciler keeps its
		// typed lane pods in caches of its own): a typed Pod read is refused, not cached.
		NewCache: newManagerCache,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &rolloutsv1beta1.Rollout{}, trafficrouting.RolloutWorkloadIndex, trafficrouting.IndexRolloutWorkload); err != nil {
		return fmt.Errorf("index rollouts by workload: %w", err)
	}
	m, err := newMetrics(crmetrics.Registry)
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	// Lane decisions (the pod webhook's, the label reconciler's) read the informers' stores
	// directly; a kind cached per namespace (--watch-namespaces) goes through the cache reader.
	indexers, viaReader, err := trafficrouting.IndexersFrom(ctx, mgr.GetCache(), cloneSets)
	if err != nil {
		return err
	}
	log.Info("lane decisions read the informers' stores", "throughTheCacheReader", viaReader)
	resolver := &trafficrouting.Resolver{Reader: mgr.GetCache(), Indexers: indexers, Defaults: defaults, CloneSets: cloneSets}

	if err := (&trafficrouting.PodLabelReconciler{
		Client: mgr.GetClient(), Resolver: resolver, Recorder: mgr.GetEventRecorderFor("lanes-manager"), Observer: m,
		Scope: &trafficrouting.NamespaceScope{Reader: mgr.GetCache(), WebhookConfiguration: o.WebhookConfigName},
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the lane label reconciler: %w", err)
	}
	if o.LaneAnalysis {
		if err := setUpLaneAnalysis(mgr, defaults); err != nil {
			return err
		}
	}
	if o.MeshRoutes {
		if err := (&trafficrouting.MeshRouteReconciler{
			Client: mgr.GetClient(), Defaults: defaults, Recorder: mgr.GetEventRecorderFor("lanes-manager"), CloneSets: cloneSets,
			RouteDrain: o.MeshRouteDrain, PodNamespaces: o.WatchedNamespaces(),
		}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up the mesh route reconciler: %w", err)
		}
	}

	certsReady := make(chan struct{})
	if o.CertMode == CertModeSelf {
		if err := ensureCertSecret(ctx, cfg, scheme, types.NamespacedName{Namespace: o.Namespace, Name: o.CertSecret}); err != nil {
			return err
		}
		webhooks := []rotator.WebhookInfo{{Name: o.WebhookConfigName, Type: rotator.Mutating}}
		if o.ValidatingConfig != "" {
			webhooks = append(webhooks, rotator.WebhookInfo{Name: o.ValidatingConfig, Type: rotator.Validating})
		}
		if err := rotator.AddRotator(mgr, &rotator.CertRotator{
			SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: o.CertSecret},
			CertDir:        o.CertDir,
			CAName:         "kruise-lanes-ca",
			CAOrganization: "kruise-lanes",
			DNSName:        o.DNSName(),
			IsReady:        certsReady,
			Webhooks:       webhooks,
		}); err != nil {
			return fmt.Errorf("set up certificate rotation: %w", err)
		}
	} else {
		close(certsReady)
	}
	labeler := &webhook.PodLabeler{
		Resolver: resolver,
		Recorder: mgr.GetEventRecorderFor("lanes-webhook"),
		Observer: m,
	}
	validator := webhook.NewLaneValidator(mgr.GetCache(), scheme, defaults, o.LaneProviders())
	// The webhook server starts only once its certificate exists; until then /readyz fails.
	// Every replica registers it, the followers too: they serve admissions while one leads.
	registration := &webhookRegistration{certsReady: certsReady, started: make(chan struct{}), register: func() {
		mgr.GetWebhookServer().Register(webhook.Path, labeler.Webhook())
		mgr.GetWebhookServer().Register(webhook.LanePath, &admission.Webhook{Handler: validator})
		log.Info("webhooks registered", "paths", []string{webhook.Path, webhook.LanePath})
	}}
	webhookStarted := registration.started
	if err := mgr.Add(registration); err != nil {
		return fmt.Errorf("add webhook registration: %w", err)
	}
	warmer := newCacheWarmer(mgr.GetCache(), cloneSets)
	if err := mgr.Add(warmer); err != nil {
		return fmt.Errorf("add cache warm-up: %w", err)
	}
	if err := mgr.AddReadyzCheck("caches", warmer.Check); err != nil {
		return fmt.Errorf("add readyz: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", func(req *http.Request) error {
		select {
		case <-webhookStarted:
			return mgr.GetWebhookServer().StartedChecker()(req)
		default:
			return errors.New("webhook certificate not ready")
		}
	}); err != nil {
		return fmt.Errorf("add readyz: %w", err)
	}
	scripts, err := o.ProviderScripts()
	if err != nil {
		return err
	}
	if len(scripts) > 0 {
		if err := (&providerReconciler{
			// managedFields say which keys are ours: read from the API server, not the cache
			// that strips them.
			installer: &plugin.Installer{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Namespace: o.KruiseNamespace, Scripts: scripts, Overwrite: o.OverwriteProviders},
			recorder:  mgr.GetEventRecorderFor("lanes-manager"),
		}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("set up the provider installer: %w", err)
		}
	}
	if err := mgr.Add(&defaultsPublisher{client: mgr.GetClient(), namespace: o.Namespace, defaults: defaults, log: ctrl.Log.WithName("defaults")}); err != nil {
		return fmt.Errorf("add the defaults publisher: %w", err)
	}
	log.Info("starting", "version", version.Get().String(), "certMode", o.CertMode, "dnsName", o.DNSName(), "laneHeader", defaults.LaneHeader, "dialects", o.Dialects)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}
