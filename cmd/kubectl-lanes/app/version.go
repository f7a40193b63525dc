package app

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kruise-lanes/kruise-lanes/cmd/internal/version"
)

// VersionOptions are the flags of `kubectl lanes version`.
type VersionOptions struct {
	Output  string
	streams Streams
}

func newVersionCommand(streams Streams) *cobra.Command {
	o := &VersionOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of kubectl-lanes",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run()
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "output format: json or yaml (default: one line)")
	return cmd
}

// Validate checks the output format.
func (o *VersionOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
		return nil
	}
	return fmt.Errorf("--output %q is not one of json, yaml", o.Output)
}

// Run prints the version.
func (o *VersionOptions) Run() error {
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
