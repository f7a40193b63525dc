//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// The test network. Test traffic (requests to the gateway, between demo hops, xDS) must never
// leave this machine, and pods need addresses the API server accepts in EndpointSlices (it refuses
// loopback). So the harness runs the whole suite in a network namespace of its own: the test
// binary (or `make demo`) re-executes itself with CLONE_NEWNET, and inside, before anything
// starts, brings up lo, makes the whole pod range local (`ip route add local PodCIDR dev lo`, so a
// server can bind any pod's address) and checks that lo is the only interface and every route
// points at it. No other interface exists in the namespace, so no packet can go anywhere else.
// Tools are built, and the modules whose files the harness reads are downloaded, before the
// re-execution, outside the namespace (the module proxy is not reachable from inside).

const (
	// PodCIDR is the pod address range: kwok assigns pod IPs from it, and inside the test network
	// the whole range is local. It is not loopback, which the API server refuses in EndpointSlices.
	PodCIDR = "10.244.0.0/16"
	// inTestNetworkEnv is set in the environment of the re-executed program.
	inTestNetworkEnv = "LANES_E2E_TEST_NETWORK"
	// xdsBootstrapEnv is grpc-go's variable naming its xDS bootstrap file.
	xdsBootstrapEnv = "GRPC_XDS_BOOTSTRAP"
	// meshClientBootstrapFile, in the prebuilt folder, is the xDS bootstrap of this process's
	// own mesh client.
	meshClientBootstrapFile = "mesh-client-xds-bootstrap.json"
	// prebuiltEnv names the folder holding the binaries built from this repository before the
	// re-execution (lanes-manager, lane-demo).
	prebuiltEnv = "LANES_E2E_PREBUILT"
)

// prebuiltBinaries are built from this repository before entering the test network: name and
// package.
func prebuiltBinaries() [][2]string {
	return [][2]string{
		{"lanes-manager", "./cmd/lanes-manager"},
		{"lane-demo", "./examples/lane-demo"},
	}
}

// harnessModules are the modules whose files the harness reads at run time (stages, CRDs), as
// group → module: downloaded before entering the test network, from where the module proxy cannot
// be reached.
func harnessModules() [][2]string {
	return [][2]string{
		{"kwok", "sigs.k8s.io/kwok"},
		{"crds", "sigs.k8s.io/gateway-api"},
		{"crds", "istio.io/api"},
		{"kruise-apps", kruiseAppsModule},
	}
}

// InTestNetwork reports whether this process runs inside the test network namespace.
func InTestNetwork() bool { return os.Getenv(inTestNetworkEnv) == "1" }

// RunInTestNetwork is the first thing a program of the harness does (Main does it for test
// binaries; `make demo` calls it from main). Outside the test network it builds the repository's
// binaries the harness runs, re-executes the program with the same arguments in a new network
// namespace, waits for it and returns its exit code with reexecuted true: the caller must exit
// with that code. Inside, it sets the namespace up and checks it, and returns reexecuted false:
// the caller goes on. Any error means nothing may send traffic.
func RunInTestNetwork() (code int, reexecuted bool, err error) {
	if InTestNetwork() {
		if err := setUpTestNetwork(); err != nil {
			return 1, false, err
		}
		return 0, false, nil
	}
	if os.Geteuid() != 0 {
		return 1, false, errors.New("the e2e harness runs its traffic in a network namespace of its own and needs root to create it (CLONE_NEWNET)")
	}
	root, err := findRepoRoot()
	if err != nil {
		return 1, false, err
	}
	bin, err := os.MkdirTemp("", workDirPrefix+"bin-")
	if err != nil {
		return 1, false, fmt.Errorf("creating the folder of prebuilt binaries: %w", err)
	}
	defer os.RemoveAll(bin) //nolint:errcheck // best-effort removal of a temporary folder once the run's result is known
	if err := os.WriteFile(filepath.Join(bin, ownerFile), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		return 1, false, fmt.Errorf("recording the prebuilt folder's owner: %w", err)
	}
	for _, m := range harnessModules() {
		if _, err := ModuleDir(context.Background(), root, m[0], m[1]); err != nil {
			return 1, false, err
		}
	}
	for _, b := range prebuiltBinaries() {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b[0]), b[1])
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return 1, false, fmt.Errorf("building %s: %w\n%s", b[0], err, out)
		}
	}
	code, err = reexecInNewNetwork(bin)
	return code, true, err
}

// reexecInNewNetwork runs this program again in a new network namespace and returns its exit
// code. SIGINT and SIGTERM are passed on; the child dies with this process (parent-death signal
// from a thread locked for the child's whole life).
func reexecInNewNetwork(prebuilt string) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("locating this program: %w", err)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// grpc-go reads the name of its xDS bootstrap file once, at start; the file itself is
	// written when a test first calls the mesh (MeshSender).
	cmd.Env = append(os.Environ(), inTestNetworkEnv+"=1", prebuiltEnv+"="+prebuilt,
		xdsBootstrapEnv+"="+filepath.Join(prebuilt, meshClientBootstrapFile))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // Pdeathsig fires when this thread ends, so it must live as long as the child
		if err := cmd.Start(); err != nil {
			done <- err
			return
		}
		done <- cmd.Wait()
	}()
	for {
		select {
		case s := <-sigs:
			if cmd.Process != nil {
				_ = cmd.Process.Signal(s)
			}
		case err := <-done:
			var exit *exec.ExitError
			switch {
			case err == nil:
				return 0, nil
			case errors.As(err, &exit):
				if st, ok := exit.Sys().(syscall.WaitStatus); ok && st.Signaled() {
					return 128 + int(st.Signal()), nil
				}
				return exit.ExitCode(), nil
			default:
				return 1, fmt.Errorf("running in a new network namespace: %w", err)
			}
		}
	}
}

// setUpTestNetwork brings up lo, makes PodCIDR local and checks the namespace.
func setUpTestNetwork() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"route", "add", "local", PodCIDR, "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("setting up the test network: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return CheckTestNetwork()
}

// CheckTestNetwork fails unless this process is in a network namespace whose only interface is lo
// and whose every route goes to lo and to loopback, PodCIDR, or their broadcast and multicast
// forms: then no request can reach an address outside this machine's test network.
func CheckTestNetwork() error {
	if !InTestNetwork() {
		return errors.New("not in the test network namespace (start through framework.Main or RunInTestNetwork)")
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("listing interfaces: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(links)), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.TrimSuffix(fields[1], ":") != "lo" {
			return fmt.Errorf("the test network has an interface other than lo, refusing to send traffic: %q", line)
		}
	}
	pods := netip.MustParsePrefix(PodCIDR)
	allowed := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), pods, netip.MustParsePrefix("ff00::/8"), netip.MustParsePrefix("fe80::/64")}
	for _, family := range []string{"-4", "-6"} {
		out, err := exec.Command("ip", family, "-o", "route", "show", "table", "all").Output()
		if err != nil {
			return fmt.Errorf("listing routes: %w", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line == "" {
				continue
			}
			if err := checkRoute(line, allowed, pods); err != nil {
				return fmt.Errorf("the test network has a route it must not have, refusing to send traffic: %w", err)
			}
		}
	}
	return nil
}

// checkRoute accepts one line of `ip -o route show table all` when it goes to lo and its
// destination lies in an allowed prefix (a broadcast address of the pod range counts as in it).
func checkRoute(line string, allowed []netip.Prefix, pods netip.Prefix) error {
	fields := strings.Fields(line)
	dev := ""
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "dev" {
			dev = fields[i+1]
		}
	}
	if dev != "lo" {
		return fmt.Errorf("%q does not go to lo", line)
	}
	dst := fields[0]
	switch dst {
	case "local", "broadcast", "multicast", "unicast", "anycast":
		if len(fields) < 2 {
			return fmt.Errorf("%q has no destination", line)
		}
		dst = fields[1]
	}
	if dst == "default" {
		return fmt.Errorf("%q is a default route", line)
	}
	prefix, err := netip.ParsePrefix(dst)
	if err != nil {
		addr, aerr := netip.ParseAddr(dst)
		if aerr != nil {
			return fmt.Errorf("%q: cannot read its destination: %w", line, err)
		}
		prefix = netip.PrefixFrom(addr, addr.BitLen())
	}
	for _, a := range allowed {
		if a.Bits() <= prefix.Bits() && a.Contains(prefix.Addr()) {
			return nil
		}
	}
	return fmt.Errorf("%q leads outside loopback and %s", line, pods)
}

// prebuilt returns the path of a binary built before entering the test network, or "" when the
// program did not come through RunInTestNetwork.
func prebuilt(name string) string {
	dir := os.Getenv(prebuiltEnv)
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
