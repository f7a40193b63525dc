// Package app holds the commands of kubectl-lanes. Each verb lives in its own file as an Options
// value with Complete (take the arguments), Validate (check the flags before any cluster is
// contacted) and Run (do the work with the command's context), and writes only to the
// cli-runtime IOStreams it is given, so tests run it in process. Adding a verb is one file and one
// line in newRoot.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// ExitError carries a specific exit code (for example 2 for a timeout) with its message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

func (e *ExitError) Unwrap() error { return e.Err }

// options is the shape of every verb's Options.
type options interface {
	// Complete takes the positional arguments (cobra has checked their number).
	Complete(args []string) error
	// Validate checks the flags.
	Validate() error
	// Run does the work; ctx ends when the command is interrupted.
	Run(ctx context.Context) error
}

// runE runs o's Complete, Validate and Run as a cobra RunE.
func runE(o options) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

// NewRootCommand builds the kubectl-lanes command tree with kubectl's connection flags.
func NewRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	flags := newKubeFlags()
	root := newRoot(streams, flags)
	flags.AddFlags(root.PersistentFlags())
	return root
}

// newRoot builds the command tree on any ClientGetter (tests pass a fake one).
func newRoot(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	root := &cobra.Command{
		Use:           "kubectl-lanes",
		Short:         "See and operate Kruise Lanes traffic lanes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, c.CommandPath())
	})
	root.AddCommand(
		newRenderCommand(streams),
		newListCommand(streams, getter),
		newStatusCommand(streams, getter),
		newApproveCommand(streams, getter),
		newRollbackCommand(streams, getter),
		newWaitCommand(streams, getter),
		newTraceCommand(streams, getter),
		newAnalyzeCommand(streams, getter),
		newVersionCommand(streams),
	)
	return root
}

// Run executes the command line with ctx (main cancels it on SIGINT or SIGTERM) and returns the
// process exit code; errors are printed once, as one sentence on the error stream.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	return execute(ctx, NewRootCommand(streams), args, streams.ErrOut)
}

// execute runs root on args with ctx, prints an error to errOut and returns the exit code.
func execute(ctx context.Context, root *cobra.Command, args []string, errOut io.Writer) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(errOut, "error: %v\n", err)
	var exitErr *ExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	return 1
}
