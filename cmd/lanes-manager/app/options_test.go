package app

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

func TestOptionsDefaultsAreValid(t *testing.T) {
	o := NewOptions()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := o.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if d.LaneHeader != "x-mse-tag" || len(d.Dialects) != 2 {
		t.Errorf("defaults %+v", d)
	}
	if o.DNSName() != "lanes-webhook.lanes-system.svc" {
		t.Errorf("DNSName %q", o.DNSName())
	}
}

func TestProviderScriptsKeys(t *testing.T) {
	o := NewOptions()
	o.ProviderPrefix = "lanes-"
	scripts, err := o.ProviderScripts()
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(scripts))
	if diff := cmp.Diff([]string{"lua.traffic.routing.ingress.lanes-higress", "lua.traffic.routing.ingress.lanes-mse"}, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	o.Providers = "mse, httproute"
	scripts, err = o.ProviderScripts()
	if err != nil {
		t.Fatal(err)
	}
	keys = slices.Sorted(maps.Keys(scripts))
	if diff := cmp.Diff([]string{"lua.traffic.routing.HTTPRoute.gateway.networking.k8s.io", "lua.traffic.routing.ingress.lanes-mse"}, keys); diff != "" {
		t.Errorf("keys with httproute (-want +got):\n%s", diff)
	}
	o.Providers = ""
	if scripts, err := o.ProviderScripts(); err != nil || len(scripts) != 0 {
		t.Errorf("empty --providers: %v %v", scripts, err)
	}
}

// The ingress providers are installed with --lane-header as their default lane header, so the
// script and the manager read the same header where a lane names none.
func TestProviderScriptsCarryTheLaneHeader(t *testing.T) {
	o := NewOptions()
	o.LaneHeader = "x-lane"
	scripts, err := o.ProviderScripts()
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range luascripts.IngressProviders() {
		embedded, err := luascripts.Ingress(class)
		if err != nil {
			t.Fatal(err)
		}
		want, err := luascripts.WithDefaultLaneHeader(embedded, "x-lane")
		if err != nil {
			t.Fatal(err)
		}
		if got := scripts[luascripts.IngressKey(class)]; got != string(want) {
			t.Errorf("%s: the installed script is not the embedded one with default lane header x-lane", class)
		}
	}
	o.LaneHeader = "x lane"
	if _, err := o.ProviderScripts(); err == nil || !strings.Contains(err.Error(), "--lane-header") {
		t.Errorf("--lane-header %q: %v, want an error naming the flag", o.LaneHeader, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Options)
		want   string
	}{
		"cert mode":  {func(o *Options) { o.CertMode = "acme" }, `--cert-mode "acme": use self or files`},
		"port":       {func(o *Options) { o.WebhookPort = 0 }, "--webhook-port 0 is not a port"},
		"dialect":    {func(o *Options) { o.Dialects = "mse,nacos" }, `unknown label dialect "nacos"`},
		"no dialect": {func(o *Options) { o.Dialects = " , " }, "--dialects needs at least one dialect"},
		"provider":   {func(o *Options) { o.Providers = "nginx" }, `no provider "nginx"; available: higress, mse, httproute`},
		"namespace":  {func(o *Options) { o.Namespace = "" }, "--namespace is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := NewOptions()
			tc.mutate(o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// --watch-namespaces scopes the kinds that grow with the pods, and only them; every object is
// trimmed either way.
func TestCacheOptionsWatchNamespaces(t *testing.T) {
	kinds := func(opts cache.Options) map[string][]string {
		out := map[string][]string{}
		for obj, by := range opts.ByObject {
			name := fmt.Sprintf("%T", obj)
			if u, ok := obj.(*unstructured.Unstructured); ok {
				name = u.GetKind()
			}
			out[name] = slices.Sorted(maps.Keys(by.Namespaces))
		}
		return out
	}
	o := NewOptions()
	all := cacheOptions(o, true)
	if all.DefaultTransform == nil {
		t.Fatal("no transform: the cache would hold whole pods")
	}
	if diff := cmp.Diff(map[string][]string{"*v1.ConfigMap": {"kruise-rollout"}}, kinds(all)); diff != "" {
		t.Errorf("without --watch-namespaces (-want +got):\n%s", diff)
	}
	o.WatchNamespaces = "shop, team-a,"
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"shop", "team-a"}
	if diff := cmp.Diff(map[string][]string{
		"*v1.ConfigMap": {"kruise-rollout"}, "*v1.Pod": want, "*v1.ReplicaSet": want, "*v1.Deployment": want, "*v1.StatefulSet": want, "CloneSet": want,
	}, kinds(cacheOptions(o, true))); diff != "" {
		t.Errorf("with --watch-namespaces (-want +got):\n%s", diff)
	}
	if _, ok := kinds(cacheOptions(o, false))["CloneSet"]; ok {
		t.Error("CloneSets scoped where they are not served")
	}
	o.WatchNamespaces = "Shop"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), `--watch-namespaces: "Shop" is not a namespace name`) {
		t.Errorf("error %v, want one naming the invalid namespace", err)
	}
}

// The lane validator judges the classes the providers are installed under, and no other.
func TestLaneProviders(t *testing.T) {
	o := NewOptions()
	o.Providers = "mse, httproute"
	o.ProviderPrefix = "lanes-"
	want := trafficrouting.Providers{IngressClasses: map[string]trafficrouting.Provider{"lanes-mse": trafficrouting.ProviderMSE}, HTTPRoute: true}
	if diff := cmp.Diff(want, o.LaneProviders()); diff != "" {
		t.Errorf("LaneProviders (-want +got):\n%s", diff)
	}
	o.Providers = ""
	if diff := cmp.Diff(trafficrouting.Providers{IngressClasses: map[string]trafficrouting.Provider{}}, o.LaneProviders()); diff != "" {
		t.Errorf("LaneProviders with none installed (-want +got):\n%s", diff)
	}
}
