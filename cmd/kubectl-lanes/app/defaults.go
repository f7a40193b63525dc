package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// defaultManagerNamespace is where the chart's install instructions put lanes-manager.
const defaultManagerNamespace = "lanes-system"

// defaultsFlags say which lane defaults (the lane header, dialects and base labels a
// TrafficRouting does not set) the lane verbs resolve lanes with: those lanes-manager publishes
// in ConfigMap kruise-lanes-defaults of its namespace, each replaced by its flag when given.
type defaultsFlags struct {
	managerNamespace string
	laneHeader       string
	dialects         string
	baseLabels       bool
	fs               *pflag.FlagSet
}

func (f *defaultsFlags) AddFlags(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.managerNamespace, "lanes-namespace", defaultManagerNamespace, "namespace of lanes-manager, whose ConfigMap "+trafficrouting.DefaultsConfigMapName+" holds the lane defaults it uses")
	fs.StringVar(&f.laneHeader, "lane-header", "", "default lane header, instead of lanes-manager's")
	fs.StringVar(&f.dialects, "dialects", "", "default label dialects, comma separated, instead of lanes-manager's: "+strings.Join(trafficrouting.DialectNames(), ", "))
	fs.BoolVar(&f.baseLabels, "base-labels", false, "default for labelling stable pods with base labels, instead of lanes-manager's")
}

func (f *defaultsFlags) changed(name string) bool { return f.fs != nil && f.fs.Changed(name) }

// LaneDefaults reads lanes-manager's published defaults through c, lets the flags replace them,
// and says in a sentence where they came from. A ConfigMap that is missing or cannot be read
// leaves the built-in defaults (the sentence says so); a malformed one is an error.
func (f *defaultsFlags) LaneDefaults(ctx context.Context, c client.Reader) (trafficrouting.Defaults, string, error) {
	o := defaultsOverrides{}
	if f.changed("lane-header") {
		o.laneHeader = &f.laneHeader
	}
	if f.changed("dialects") {
		o.dialects = &f.dialects
	}
	if f.changed("base-labels") {
		o.baseLabels = &f.baseLabels
	}
	key := client.ObjectKey{Namespace: f.managerNamespace, Name: trafficrouting.DefaultsConfigMapName}
	if o.all() {
		return resolveDefaults(key, nil, nil, o)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, key, cm); err != nil {
		return resolveDefaults(key, nil, err, o)
	}
	return resolveDefaults(key, cm, nil, o)
}

// defaultsOverrides are the defaults given as flags (nil: not given).
type defaultsOverrides struct {
	laneHeader *string
	dialects   *string
	baseLabels *bool
}

func (o defaultsOverrides) all() bool {
	return o.laneHeader != nil && o.dialects != nil && o.baseLabels != nil
}

func (o defaultsOverrides) names() []string {
	var out []string
	if o.laneHeader != nil {
		out = append(out, "--lane-header")
	}
	if o.dialects != nil {
		out = append(out, "--dialects")
	}
	if o.baseLabels != nil {
		out = append(out, "--base-labels")
	}
	return out
}

// resolveDefaults decides the defaults from the ConfigMap read at key (or the error reading it)
// and the flags, and the sentence that says where they came from.
func resolveDefaults(key client.ObjectKey, cm *corev1.ConfigMap, getErr error, o defaultsOverrides) (trafficrouting.Defaults, string, error) {
	d := trafficrouting.DefaultDefaults()
	var source string
	switch {
	case o.all():
		source = "from flags"
	case cm != nil:
		published, err := trafficrouting.DefaultsFromConfigMapData(cm.Data)
		if err != nil {
			return trafficrouting.Defaults{}, "", fmt.Errorf("ConfigMap %s holds no usable lane defaults (%w); fix it, delete it, or pass --lane-header, --dialects and --base-labels", key, err)
		}
		d, source = published, "from ConfigMap "+key.String()
	case apierrors.IsNotFound(getErr):
		source = fmt.Sprintf("built-in (ConfigMap %s not found)", key)
	default:
		source = fmt.Sprintf("built-in (ConfigMap %s unreadable: %v)", key, getErr)
	}
	if names := o.names(); len(names) > 0 && !o.all() {
		source = "from flags (" + strings.Join(names, ", ") + "), otherwise " + source
	}
	if o.laneHeader != nil {
		if msgs := validation.IsHTTPHeaderName(*o.laneHeader); len(msgs) > 0 {
			return trafficrouting.Defaults{}, "", fmt.Errorf("--lane-header %q is not a valid HTTP header name", *o.laneHeader)
		}
		d.LaneHeader = *o.laneHeader
	}
	if o.dialects != nil {
		dialects, err := trafficrouting.ParseDialects(*o.dialects)
		if err != nil {
			return trafficrouting.Defaults{}, "", fmt.Errorf("--dialects: %w", err)
		}
		if len(dialects) == 0 {
			return trafficrouting.Defaults{}, "", fmt.Errorf("--dialects needs at least one of %s", strings.Join(trafficrouting.DialectNames(), ", "))
		}
		d.Dialects = dialects
	}
	if o.baseLabels != nil {
		d.BaseLabels = *o.baseLabels
	}
	return d, fmt.Sprintf("defaults: %s: lane header %s, dialects %s, base labels %t", source, d.LaneHeader, dialectList(d.Dialects), d.BaseLabels), nil
}

func dialectList(ds []trafficrouting.Dialect) string {
	names := make([]string, 0, len(ds))
	for _, d := range ds {
		names = append(names, string(d))
	}
	return strings.Join(names, ",")
}
