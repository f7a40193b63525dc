//go:build e2e

package framework

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcessSpec describes a subprocess the harness runs: a component of the control plane, the Kruise
// manager, or a binary of our own such as lanes-manager.
type ProcessSpec struct {
	// Name identifies the process in logs and failure dumps; its log file is <Name>.log.
	Name string
	// Path is the executable.
	Path string
	// Args are the command-line arguments, without the executable.
	Args []string
	// Env is added to the harness's own environment.
	Env []string
	// Dir is the working directory; empty means the harness's own.
	Dir string
}

// Process is a running subprocess with its stdout and stderr captured in one log file. It runs in
// its own process group so that stopping it also stops anything it forked.
type Process struct {
	spec    ProcessSpec
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	exited  chan struct{}
	waitErr error
}

// Supervisor starts subprocesses and guarantees they end with the test binary.
//
// Every child is forked from one goroutine locked to its own OS thread, with a parent-death signal of
// SIGKILL. The kernel delivers that signal when the forking thread ends, so the children die with the
// test binary even when it panics, times out or is killed with SIGKILL, when no deferred cleanup runs.
// Stop ends them gracefully first.
type Supervisor struct {
	logDir string
	spawn  chan spawnRequest

	mu      sync.Mutex
	procs   []*Process
	stopped bool
}

type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

// NewSupervisor returns a Supervisor writing process logs under logDir.
func NewSupervisor(logDir string) (*Supervisor, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	s := &Supervisor{logDir: logDir, spawn: make(chan spawnRequest)}
	go s.spawner()
	return s, nil
}

// spawner forks every child from one OS thread. It never unlocks the thread: when Stop closes the
// channel the goroutine returns, the runtime ends the thread, and any child still alive is killed.
func (s *Supervisor) spawner() {
	runtime.LockOSThread()
	for req := range s.spawn {
		req.reply <- req.cmd.Start()
	}
}

// Start runs spec and returns once the process has been forked.
func (s *Supervisor) Start(spec ProcessSpec) (*Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.startLocked(spec)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	return p, nil
}

// startLocked forks spec; the caller holds s.mu and records the process.
func (s *Supervisor) startLocked(spec ProcessSpec) (*Process, error) {
	if s.stopped {
		return nil, fmt.Errorf("starting %s: the supervisor is stopped", spec.Name)
	}
	logPath := filepath.Join(s.logDir, spec.Name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", spec.Name, err)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = append(childEnviron(), spec.Env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logFile, "# %s %s\n", spec.Path, strings.Join(spec.Args, " "))

	reply := make(chan error, 1)
	s.spawn <- spawnRequest{cmd: cmd, reply: reply}
	if err := <-reply; err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	p := &Process{spec: spec, cmd: cmd, logPath: logPath, logFile: logFile, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// childEnviron is the harness's environment without what belongs to the harness process alone
// (its own mesh client's xDS bootstrap).
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, xdsBootstrapEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// Processes returns the processes started so far, oldest first.
func (s *Supervisor) Processes() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Process(nil), s.procs...)
}

// Stop stops every process, newest first (so the API server outlives its clients), each with the
// given grace period, and then ends the spawner thread. It is safe to call more than once.
func (s *Supervisor) Stop(grace time.Duration) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	procs := s.procs
	s.mu.Unlock()

	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(grace); err != nil {
			errs = append(errs, err)
		}
	}
	close(s.spawn)
	return errors.Join(errs...)
}

// Name is the process's name from its spec.
func (p *Process) Name() string { return p.spec.Name }

// LogPath is the file holding the process's stdout and stderr.
func (p *Process) LogPath() string { return p.logPath }

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr reports how the process ended, as an error even for a clean exit (any exit of a
// component is unexpected); it is nil while the process runs.
func (p *Process) ExitErr() error {
	if p.Running() {
		return nil
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s ended: %w", p.spec.Name, p.waitErr)
	}
	return fmt.Errorf("%s exited with status 0", p.spec.Name)
}

// Running reports whether the process has not ended yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process group, and SIGKILL if it has not ended after grace. Stopping an
// ended process is a no-op.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("terminating %s: %w", p.spec.Name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s: %w", p.spec.Name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.spec.Name, pgid)
	}
}

// Tail returns at most the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	return tailFile(p.logPath, n)
}

// tailFile returns at most the last n lines of the file at path, reading at most its last 256 KiB.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const window = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		_, _ = f.Seek(st.Size()-window, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
