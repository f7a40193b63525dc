//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Start starts the same control plane Main starts, for a program that is not a test binary (the
// demo). The caller owns the Cluster: it must call Stop when done and when interrupted; cancelling
// ctx during Start stops what was started and returns ctx's error. If the caller dies without
// stopping the Cluster (a panic, SIGKILL), the processes end anyway through the Supervisor's
// parent-death signal. The program must have entered the test network first (RunInTestNetwork).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if err := CheckTestNetwork(); err != nil {
		return nil, fmt.Errorf("the cluster runs only in the test network; call framework.RunInTestNetwork first: %w", err)
	}
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, errors.Join(ctx.Err(), c.stop(false))
		}
		for _, p := range c.sup.Processes() {
			fmt.Fprintf(os.Stderr, "----- %s (last 30 lines)\n%s\n", p.Name(), p.Tail(30))
		}
		return nil, errors.Join(fmt.Errorf("starting the control plane: %w", err), c.stop(true))
	}
	return c, nil
}

// Stop stops every process the Cluster started, newest first, and removes its work directory; with
// keepLogs the component logs are first copied to ArtifactsDir/logs. It is safe to call more than
// once, also concurrently: only the first call acts, the others wait for it.
func (c *Cluster) Stop(keepLogs bool) error {
	return c.stop(keepLogs)
}

// LogDir is the folder that holds every component's log while the Cluster runs.
func (c *Cluster) LogDir() string { return c.sup.logDir }
