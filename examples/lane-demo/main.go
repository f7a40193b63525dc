// Command lane-demo is one hop of the lane demo call chain A -> B -> C: it answers
// "NAME[LANE] -> <downstream answer>" over HTTP and gRPC, copying the lane headers downstream.
// Configuration is by environment variables only; see README.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kruise-lanes/kruise-lanes/examples/lane-demo/hop"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "lane-demo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := hop.ParseEnv(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	return hop.Run(ctx, cfg, log)
}
