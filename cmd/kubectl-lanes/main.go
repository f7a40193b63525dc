// Command kubectl-lanes operates Kruise Lanes traffic lanes; installed on PATH it is `kubectl lanes`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kruise-lanes/kruise-lanes/cmd/kubectl-lanes/app"
)

func main() {
	// The first SIGINT or SIGTERM ends the command's context (status -w stops, wait returns);
	// once it has, the default handling is back, so a second one ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := app.Run(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
