package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/cmd/internal/version"
)

// VersionOptions are the flags of `kubectl lanes version`.
type VersionOptions struct {
	Output string

	streams genericiooptions.IOStreams
}

func newVersionCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &VersionOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of kubectl-lanes",
		Args:  cobra.NoArgs,
		RunE:  runE(o),
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: one line)")
	return cmd
}

// Complete has nothing to take: version has no arguments.
func (o *VersionOptions) Complete([]string) error { return nil }

// Validate checks the output format.
func (o *VersionOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output %q is not one of json, yaml", o.Output)
}

// Run prints the version.
func (o *VersionOptions) Run(context.Context) error {
	info := version.Get()
	switch o.Output {
	case "json":
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return fmt.Errorf("encode version: %w", err)
		}
		_, err = fmt.Fprintf(o.streams.Out, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(info)
		if err != nil {
			return fmt.Errorf("encode version: %w", err)
		}
		_, err = o.streams.Out.Write(b)
		return err
	}
	_, err := fmt.Fprintf(o.streams.Out, "kubectl-lanes %s\n", info)
	return err
}
