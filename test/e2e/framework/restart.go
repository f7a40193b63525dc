//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Respawn runs the spec of the ended process p again: same binary, arguments, environment and
// working directory, so the same ports and data; its log file is appended to. The new process
// takes p's place among the Supervisor's processes, so Stop still ends the components in the
// order they were first started (the API server after its clients). It refuses while p runs.
func (s *Supervisor) Respawn(p *Process) (*Process, error) {
	if p.Running() {
		return nil, fmt.Errorf("restarting %s: it is still running", p.Name())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	np, err := s.startLocked(p.spec)
	if err != nil {
		return nil, err
	}
	replaced := false
	for i, q := range s.procs {
		if q == p {
			s.procs[i], replaced = np, true
		}
	}
	if !replaced {
		s.procs = append(s.procs, np)
	}
	return np, nil
}

// Kill ends the process group at once with SIGKILL, the way a crash or an OOM kill ends a
// process: no shutdown code runs (a leader does not give up its Lease), and returns once it has
// exited.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.spec.Name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not exit after SIGKILL", p.spec.Name)
	}
}

// RestartKruise stops the Kruise Rollouts manager the suite started (SIGTERM, the way a rolling
// update of its Deployment ends it), calls whileStopped (nil: nothing) while it is down, and
// starts it again on the same ports, certificates and working directory; it returns once the
// manager is ready and its webhooks are registered again, as at the suite's start. The control
// plane is shared: a test that calls it must not run in parallel with others.
func (c *Cluster) RestartKruise(ctx context.Context, whileStopped func() error) error {
	c.restartMu.Lock()
	defer c.restartMu.Unlock()
	if c.kruise == nil {
		return errors.New("this suite runs no Kruise Rollouts manager (Options.WithoutKruise)")
	}
	return c.restart(ctx, &c.kruise, whileStopped, func(ctx context.Context) error { return c.kruiseReady(ctx, c.kruise) })
}

// RestartAPIServer stops kube-apiserver (SIGTERM), calls whileStopped (nil: nothing) while it is
// down, and starts it again with the same flags: same address and port, serving certificate,
// tokens and etcd (whose data is untouched). It returns once /readyz answers again. Every client
// (kube-controller-manager, the scheduler, kwok, Kruise, lanes-manager, istiod, the pod runner)
// must reconnect by itself. The control plane is shared: a test that calls it must not run in
// parallel with others.
func (c *Cluster) RestartAPIServer(ctx context.Context, whileStopped func() error) error {
	c.restartMu.Lock()
	defer c.restartMu.Unlock()
	return c.restart(ctx, &c.apiServer.proc, whileStopped, c.apiServer.ready)
}

// restart stops *proc, runs whileStopped, starts it again in its place and waits for ready.
func (c *Cluster) restart(ctx context.Context, proc **Process, whileStopped func() error, ready func(context.Context) error) error {
	old := *proc
	if !old.Running() {
		return fmt.Errorf("restarting %s: it had already exited: %w", old.Name(), old.ExitErr())
	}
	if err := old.Stop(stopGrace); err != nil {
		return err
	}
	var errs []error
	if whileStopped != nil {
		if err := whileStopped(); err != nil {
			errs = append(errs, fmt.Errorf("while %s was stopped: %w", old.Name(), err))
		}
	}
	np, err := c.sup.Respawn(old)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	*proc = np
	if err := ready(ctx); err != nil {
		errs = append(errs, fmt.Errorf("%s after its restart: %w", np.Name(), err))
	}
	return errors.Join(errs...)
}
