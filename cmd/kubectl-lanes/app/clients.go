package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// ClientGetter gives commands a client, the namespace to work in and the lane defaults to
// resolve lanes with; tests inject their own.
type ClientGetter interface {
	Client() (client.Client, error)
	Namespace() (string, error)
	// LaneDefaults returns the defaults and a sentence saying where they came from.
	LaneDefaults(ctx context.Context, c client.Reader) (trafficrouting.Defaults, string, error)
}

// kubeFlags are kubectl's usual flags (--kubeconfig, --context, -n, ...) through cli-runtime,
// and the flags that choose the lane defaults.
type kubeFlags struct {
	flags *genericclioptions.ConfigFlags
	defaultsFlags
}

func newKubeFlags() *kubeFlags {
	return &kubeFlags{flags: genericclioptions.NewConfigFlags(true)}
}

func (k *kubeFlags) AddFlags(fs *pflag.FlagSet) {
	k.flags.AddFlags(fs)
	k.defaultsFlags.AddFlags(fs)
}

func (k *kubeFlags) Client() (client.Client, error) {
	cfg, err := k.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	// A lane is read as a handful of lists and gets per look; keep -w and wait from throttling.
	cfg.QPS, cfg.Burst = 50, 100
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		return nil, err
	}
	if err := lanesv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster: %w", err)
	}
	return c, nil
}

func (k *kubeFlags) Namespace() (string, error) {
	ns, _, err := k.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("resolve the namespace: %w", err)
	}
	return ns, nil
}

// connect returns the client, the namespace and the lane defaults, and says on the error stream
// where the defaults came from.
func connect(ctx context.Context, streams genericiooptions.IOStreams, getter ClientGetter) (client.Client, string, trafficrouting.Defaults, error) {
	c, err := getter.Client()
	if err != nil {
		return nil, "", trafficrouting.Defaults{}, err
	}
	ns, err := getter.Namespace()
	if err != nil {
		return nil, "", trafficrouting.Defaults{}, err
	}
	d, source, err := getter.LaneDefaults(ctx, c)
	if err != nil {
		return nil, "", trafficrouting.Defaults{}, err
	}
	if streams.ErrOut != nil {
		fmt.Fprintln(streams.ErrOut, source)
	}
	return c, ns, d, nil
}

// connectLane connects and reads one lane.
func connectLane(ctx context.Context, streams genericiooptions.IOStreams, getter ClientGetter, name string) (client.Client, *laneops.LaneState, error) {
	c, ns, d, err := connect(ctx, streams, getter)
	if err != nil {
		return nil, nil, err
	}
	st, err := laneops.Load(ctx, c, ns, name, d)
	if err != nil {
		return nil, nil, err
	}
	return c, st, nil
}

// exactlyOneLane is the Args check of the verbs that take one lane.
func exactlyOneLane(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return errors.New("name exactly one lane (a TrafficRouting); kubectl lanes list shows them")
	}
	return nil
}
