// Package app holds the commands of kubectl-lanes. Each command has an Options value with
// Complete, Validate and Run, and writes only to the streams it is given, so tests run it in
// process.
package app

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Streams are the standard streams a command reads and writes.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// ExitError carries a specific exit code (for example 2 for a timeout) with its message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

func (e *ExitError) Unwrap() error { return e.Err }

// NewRootCommand builds the kubectl-lanes command tree with kubectl's connection flags.
func NewRootCommand(streams Streams) *cobra.Command {
	flags := newKubeFlags()
	root := newRoot(streams, flags)
	flags.AddFlags(root.PersistentFlags())
	return root
}

// newRoot builds the command tree on any ClientGetter (tests pass a fake one).
func newRoot(streams Streams, getter ClientGetter) *cobra.Command {
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
	root.AddCommand(NewRenderCommand(streams), newListCommand(streams, getter), newStatusCommand(streams, getter),
		newApproveCommand(streams, getter), newRollbackCommand(streams, getter), newWaitCommand(streams, getter),
		newTraceCommand(streams, getter), newAnalyzeCommand(streams, getter), newVersionCommand(streams))
	return root
}

// Run executes the command line and returns the process exit code; errors are printed once, as
// one sentence on the error stream.
func Run(args []string, streams Streams) int {
	root := NewRootCommand(streams)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
	var exitErr *ExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	return 1
}
