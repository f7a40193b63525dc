// Package app is lanes-manager's command: flags, their validation, and run, which builds the
// manager from them.
package app

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// Certificate modes.
const (
	// CertModeSelf: lanes-manager generates and rotates its serving certificate (CA in a Secret)
	// and patches the CA into its MutatingWebhookConfiguration.
	CertModeSelf = "self"
	// CertModeFiles: the certificate is mounted from files (cert-manager) and the CA injected by
	// someone else.
	CertModeFiles = "files"
)

// Options are lanes-manager's flags.
type Options struct {
	MetricsAddr        string
	ProbeAddr          string
	LeaderElect        bool
	LeaderElectionNS   string
	WebhookHost        string
	WebhookPort        int
	CertDir            string
	CertMode           string
	CertSecret         string
	Namespace          string
	WebhookConfigName  string
	ValidatingConfig   string
	WebhookDNSName     string
	LaneHeader         string
	Dialects           string
	BaseLabels         bool
	KruiseNamespace    string
	Providers          string
	ProviderPrefix     string
	OverwriteProviders bool
	MeshRoutes         bool
	MeshRouteDrain     time.Duration
	LaneAnalysis       bool
	WatchNamespaces    string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		MetricsAddr:       ":8080",
		ProbeAddr:         ":8081",
		LeaderElect:       true,
		WebhookPort:       9443,
		CertDir:           "/tmp/k8s-webhook-server/serving-certs",
		CertMode:          CertModeSelf,
		CertSecret:        "lanes-webhook-cert",
		MeshRouteDrain:    trafficrouting.DefaultRouteDrain,
		Namespace:         "lanes-system",
		WebhookConfigName: "lanes-mutating-webhook-configuration",
		ValidatingConfig:  "lanes-validating-webhook-configuration",
		LaneHeader:        "x-mse-tag",
		Dialects:          "mse,opensergo",
		KruiseNamespace:   "kruise-rollout",
		Providers:         "mse,higress",
		LaneAnalysis:      true,
	}
}

// AddFlags registers the flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "address of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "elect one leader among replicas for the controllers (the webhook is served by every replica)")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", o.LeaderElectionNS, "namespace of the leader election Lease (default: the manager's namespace)")
	fs.StringVar(&o.WebhookHost, "webhook-host", o.WebhookHost, "address the webhook server listens on (default: all)")
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "port of the webhook server")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "directory of the serving certificate (tls.crt, tls.key)")
	fs.StringVar(&o.CertMode, "cert-mode", o.CertMode, "self: generate and rotate the serving certificate; files: use the files in --cert-dir (cert-manager)")
	fs.StringVar(&o.CertSecret, "cert-secret", o.CertSecret, "Secret that holds the CA and serving certificate in --cert-mode=self")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the manager (certificate Secret, leader election)")
	fs.StringVar(&o.WebhookConfigName, "webhook-configuration", o.WebhookConfigName, "our MutatingWebhookConfiguration: --cert-mode=self keeps its caBundle current, and the label reconciler serves only the namespaces its namespaceSelector selects")
	fs.StringVar(&o.ValidatingConfig, "validating-webhook-configuration", o.ValidatingConfig, "our ValidatingWebhookConfiguration, which sends TrafficRoutings and Rollouts to the lane validator: --cert-mode=self keeps its caBundle current (empty: the chart installs none)")
	fs.StringVar(&o.WebhookDNSName, "webhook-dns-name", o.WebhookDNSName, "DNS name in the serving certificate (default: lanes-webhook.<namespace>.svc)")
	fs.StringVar(&o.LaneHeader, "lane-header", o.LaneHeader, "default lane header whose injected value is a lane's tag")
	fs.StringVar(&o.Dialects, "dialects", o.Dialects, "default label dialects, comma separated: "+strings.Join(trafficrouting.DialectNames(), ", "))
	fs.BoolVar(&o.BaseLabels, "base-labels", o.BaseLabels, "by default, label the stable pods of lane members with the dialects' base labels")
	fs.StringVar(&o.KruiseNamespace, "kruise-namespace", o.KruiseNamespace, "namespace of Kruise Rollouts and its kruise-rollout-configuration ConfigMap")
	fs.StringVar(&o.Providers, "providers", o.Providers, "providers to install into Kruise's ConfigMap, comma separated (empty: install none): ingress class types "+
		strings.Join(luascripts.IngressProviders(), ", ")+" (key "+luascripts.IngressKey("<class>")+") and custom network providers "+customNetworkHelp())
	fs.StringVar(&o.ProviderPrefix, "provider-class-prefix", o.ProviderPrefix, "install ingress providers under class types <prefix><class> (e.g. lanes-mse) instead of replacing Kruise's built-in class names; custom network keys are fixed by Kruise and take no prefix")
	fs.BoolVar(&o.OverwriteProviders, "overwrite-providers", o.OverwriteProviders, "take over provider keys that someone else set in Kruise's ConfigMap")
	fs.BoolVar(&o.MeshRoutes, "mesh-routes", o.MeshRoutes, "write the east-west routes of istio lanes (DestinationRules, VirtualServices) and gateway-api lanes (Services, HTTPRoutes), for the meshes whose CRDs are installed")
	fs.BoolVar(&o.LaneAnalysis, "lane-analysis", o.LaneAnalysis, "run LaneAnalyses (kruise-lanes.io/v1alpha1): measure paused lanes in Prometheus, approve or roll them back; skipped when the CRD is not installed")
	fs.StringVar(&o.WatchNamespaces, "watch-namespaces", o.WatchNamespaces, "namespaces, comma separated, whose Pods, ReplicaSets, Deployments, StatefulSets and CloneSets the cache holds (default: all); the pod webhook's namespaceSelector must select no other namespace (the chart restricts it to these)")
	fs.DurationVar(&o.MeshRouteDrain, "mesh-route-drain", o.MeshRouteDrain, "how long a hop's DestinationRule or lane Services outlive its route once neither is wanted, so that no mesh client is left with a route to a destination that is gone")
}

// ProviderScripts maps the ConfigMap keys to install to their scripts. The ingress providers
// carry --lane-header as their default lane header.
func (o *Options) ProviderScripts() (map[string]string, error) {
	out := map[string]string{}
	for _, class := range strings.Split(o.Providers, ",") {
		class = strings.TrimSpace(class)
		if class == "" {
			continue
		}
		if p, ok := luascripts.CustomNetworkProviderNamed(class); ok {
			script, err := luascripts.CustomNetwork(p.Name)
			if err != nil {
				return nil, fmt.Errorf("--providers: %w", err)
			}
			out[p.Key()] = string(script)
			continue
		}
		script, err := luascripts.Ingress(class)
		if err != nil {
			return nil, fmt.Errorf("--providers: no provider %q; available: %s", class, strings.Join(luascripts.ProviderNames(), ", "))
		}
		// The script's default lane header is the manager's, so both resolve the same lane.
		if script, err = luascripts.WithDefaultLaneHeader(script, o.LaneHeader); err != nil {
			return nil, fmt.Errorf("--lane-header: %w", err)
		}
		key := luascripts.IngressKey(o.ProviderPrefix + class)
		if msgs := validation.IsConfigMapKey(key); len(msgs) > 0 {
			return nil, fmt.Errorf("--provider-class-prefix %q makes key %q, which is not a ConfigMap key: %s", o.ProviderPrefix, key, strings.Join(msgs, "; "))
		}
		out[key] = string(script)
	}
	return out, nil
}

// LaneProviders says which provider Kruise runs for which entry, as --providers and
// --provider-class-prefix install them, for the lane validator.
func (o *Options) LaneProviders() trafficrouting.Providers {
	p := trafficrouting.Providers{IngressClasses: map[string]trafficrouting.Provider{}}
	for _, class := range strings.Split(o.Providers, ",") {
		switch class = strings.TrimSpace(class); trafficrouting.Provider(class) {
		case trafficrouting.ProviderMSE, trafficrouting.ProviderHigress:
			p.IngressClasses[o.ProviderPrefix+class] = trafficrouting.Provider(class)
		case trafficrouting.ProviderHTTPRoute:
			p.HTTPRoute = true
		}
	}
	return p
}

// customNetworkHelp lists the custom network providers as "name (key)".
func customNetworkHelp() string {
	var names []string
	for _, p := range luascripts.CustomNetworkProviders() {
		names = append(names, p.Name+" (key "+p.Key()+")")
	}
	return strings.Join(names, ", ")
}

// Validate checks the flags and says what to change.
func (o *Options) Validate() error {
	var errs []error
	if o.CertMode != CertModeSelf && o.CertMode != CertModeFiles {
		errs = append(errs, fmt.Errorf("--cert-mode %q: use self or files", o.CertMode))
	}
	if o.WebhookPort <= 0 || o.WebhookPort > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d is not a port", o.WebhookPort))
	}
	if o.Namespace == "" {
		errs = append(errs, errors.New("--namespace is required"))
	}
	if _, err := o.Defaults(); err != nil {
		errs = append(errs, err)
	}
	if o.MeshRouteDrain <= 0 {
		errs = append(errs, fmt.Errorf("--mesh-route-drain %s must be positive", o.MeshRouteDrain))
	}
	if _, err := o.ProviderScripts(); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range o.WatchedNamespaces() {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}

// WatchedNamespaces are the namespaces of --watch-namespaces; nil means every namespace.
func (o *Options) WatchedNamespaces() []string {
	var out []string
	for _, ns := range strings.Split(o.WatchNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

// Defaults are the lane defaults the flags set.
func (o *Options) Defaults() (trafficrouting.Defaults, error) {
	dialects, err := trafficrouting.ParseDialects(o.Dialects)
	if err != nil {
		return trafficrouting.Defaults{}, fmt.Errorf("--dialects: %w", err)
	}
	if len(dialects) == 0 {
		return trafficrouting.Defaults{}, errors.New("--dialects needs at least one dialect")
	}
	return trafficrouting.Defaults{LaneHeader: o.LaneHeader, Dialects: dialects, BaseLabels: o.BaseLabels}, nil
}

// DNSName is the name the serving certificate is issued for.
func (o *Options) DNSName() string {
	if o.WebhookDNSName != "" {
		return o.WebhookDNSName
	}
	return "lanes-webhook." + o.Namespace + ".svc"
}
