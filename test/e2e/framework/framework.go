//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

const (
	// stopGrace is how long a component gets to exit after SIGTERM before it is killed.
	stopGrace = 5 * time.Second
	// workDirPrefix names the temporary work directories (etcd data, certificates, logs).
	workDirPrefix = "lanes-e2e-"
	// ownerFile in a work directory holds the pid of the test binary that owns it.
	ownerFile = "owner.pid"
)

// Options configure a Cluster. The zero value finds everything from the environment.
type Options struct {
	// RepoRoot is the repository root; empty means the folder above the working directory that
	// holds test/tools/build.sh.
	RepoRoot string
	// ToolsBin holds the binaries built by `make tools`; empty means $LANES_TOOLS_BIN, then
	// $KUBEBUILDER_ASSETS, then <RepoRoot>/.cache/bin.
	ToolsBin string
	// ArtifactsDir receives component logs and object dumps of failed runs; empty means
	// <RepoRoot>/test/e2e/artifacts.
	ArtifactsDir string
	// GatewayAPICRDs installs the Gateway API CRDs (experimental channel) from the module pinned in
	// test/tools/crds.
	GatewayAPICRDs bool
	// IstioCRDs installs Istio's CRDs from the module pinned in test/tools/crds.
	IstioCRDs bool
	// KruiseApps installs OpenKruise's CRDs (CloneSet & co.) before Kruise Rollouts starts, and runs
	// the OpenKruise manager (built by `make tools` from test/tools/kruise-apps) with only its
	// CloneSet webhooks registered.
	KruiseApps bool
	// WithoutKruise installs Kruise Rollouts' CRDs (without their conversion webhook: only v1beta1
	// Rollouts can be used) but neither runs its manager nor registers its webhooks, so a test can
	// write Rollout status itself at a scale the real controller would take minutes to reach.
	WithoutKruise bool
	// LanesCRDs installs Kruise Lanes' own CRDs (LaneAnalysis) from the chart's crds/ folder, so
	// that lanes-manager runs the lane analysis.
	LanesCRDs bool
}

// Cluster is a running control plane with the Kruise Rollouts manager.
type Cluster struct {
	// Config reaches the API server as a member of system:masters.
	Config *rest.Config
	// Client is a controller-runtime client whose scheme knows client-go's types and Kruise's
	// rollouts.kruise.io v1alpha1 and v1beta1, and kruise-lanes.io v1alpha1.
	Client client.Client
	// Kubeconfig is the path of a kubeconfig file for Config, for subprocesses.
	Kubeconfig string
	// RepoRoot, ToolsBin and ArtifactsDir are the resolved Options.
	RepoRoot, ToolsBin, ArtifactsDir string

	opts   Options
	dir    string
	sup    *Supervisor
	kruise *Process
	// kruiseReady waits until a (re)started Kruise manager serves its webhooks (RestartKruise).
	kruiseReady func(context.Context, *Process) error
	// apiServer is kube-apiserver and how to wait for it (RestartAPIServer).
	apiServer apiServer
	// restartMu serialises the restarts of shared components.
	restartMu sync.Mutex
	// kruiseApps is the OpenKruise manager; nil without Options.KruiseApps.
	kruiseApps *Process
	// istio is istiod, started on first use (Istiod, or a pod runner's proxyless gRPC pod).
	istio istiod
	// meshClient is this process's own xDS bootstrap (MeshSender).
	meshClient meshClient

	stopOnce sync.Once
	stopErr  error
}

// Main starts a Cluster, hands it to use, runs the tests and stops every process it started. It
// returns the exit code for os.Exit. The tests run in the test network (see RunInTestNetwork): Main
// first re-executes the test binary in a network namespace of its own and returns its exit code. SIGINT and SIGTERM stop the processes and exit at once; a panic
// or a kill of the test binary ends them through the Supervisor's parent-death signal.
//
//	var cluster *framework.Cluster // set once by TestMain
//
//	func TestMain(m *testing.M) {
//		os.Exit(framework.Main(m, framework.Options{}, func(c *framework.Cluster) { cluster = c }))
//	}
func Main(m *testing.M, opts Options, use func(*Cluster)) int {
	if code, reexecuted, err := RunInTestNetwork(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	} else if reexecuted {
		return code
	}
	c, err := newCluster(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "e2e: %v: stopping the control plane\n", s)
			cancel()
			_ = c.stop(true)
			os.Exit(130)
		case <-ctx.Done():
		}
	}()

	start := time.Now()
	if err := c.start(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: starting the control plane: %v\n", err)
		for _, p := range c.sup.Processes() {
			fmt.Fprintf(os.Stderr, "----- %s (last 30 lines)\n%s\n", p.Name(), p.Tail(30))
		}
		_ = c.stop(true)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: control plane and Kruise ready in %s (logs in %s)\n", time.Since(start).Round(100*time.Millisecond), c.sup.logDir)
	use(c)
	code := m.Run()
	if err := c.stop(code != 0); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stopping the control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// newCluster resolves the options and prepares a work directory and a Supervisor; it starts nothing.
func newCluster(opts Options) (*Cluster, error) {
	c := &Cluster{opts: opts, RepoRoot: opts.RepoRoot, ToolsBin: opts.ToolsBin, ArtifactsDir: opts.ArtifactsDir}
	if c.RepoRoot == "" {
		root, err := findRepoRoot()
		if err != nil {
			return nil, err
		}
		c.RepoRoot = root
	}
	for _, v := range []string{c.ToolsBin, os.Getenv("LANES_TOOLS_BIN"), os.Getenv("KUBEBUILDER_ASSETS"), filepath.Join(c.RepoRoot, ".cache", "bin")} {
		if v != "" {
			c.ToolsBin = v
			break
		}
	}
	abs, err := filepath.Abs(c.ToolsBin)
	if err != nil {
		return nil, fmt.Errorf("resolving the tools folder: %w", err)
	}
	c.ToolsBin = abs
	bins := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kruise-rollouts-manager"}
	if opts.KruiseApps {
		bins = append(bins, "kruise-manager")
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(c.ToolsBin, bin)); err != nil {
			return nil, fmt.Errorf("%s is missing from %s; build the tools with `make tools`: %w", bin, c.ToolsBin, err)
		}
	}
	if c.ArtifactsDir == "" {
		c.ArtifactsDir = filepath.Join(c.RepoRoot, "test", "e2e", "artifacts")
	}
	removeAbandonedWorkDirs()
	c.dir, err = os.MkdirTemp("", workDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("creating the work directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("recording the work directory's owner: %w", err)
	}
	c.sup, err = NewSupervisor(filepath.Join(c.dir, "logs"))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// start brings up the control plane, kwok, the optional CRDs and Kruise.
func (c *Cluster) start(ctx context.Context) error {
	cp, err := startControlPlane(ctx, c.sup, c.ToolsBin, c.dir)
	if err != nil {
		return err
	}
	c.Config, c.Kubeconfig, c.apiServer = cp.config, cp.kubeconfig, cp.apiServer
	c.Client, err = client.New(c.Config, client.Options{Scheme: Scheme()})
	if err != nil {
		return fmt.Errorf("building the client: %w", err)
	}
	if err := startKwok(ctx, c.sup, c.Client, c.ToolsBin, c.RepoRoot, c.dir, c.Kubeconfig); err != nil {
		return err
	}
	if err := c.installOptionalCRDs(ctx); err != nil {
		return err
	}
	appsModule := ""
	if c.opts.KruiseApps {
		if appsModule, err = installKruiseAppsCRDs(ctx, c.Client, c.RepoRoot); err != nil {
			return err
		}
	}
	if c.opts.WithoutKruise {
		return installKruiseCRDs(ctx, c.Client, c.ToolsBin)
	}
	c.kruise, c.kruiseReady, err = startKruise(ctx, c.sup, c.Client, c.ToolsBin, c.dir, c.Kubeconfig)
	if err != nil || !c.opts.KruiseApps {
		return err
	}
	c.kruiseApps, err = startKruiseApps(ctx, c.sup, c.Client, appsModule, c.ToolsBin, c.dir, c.Kubeconfig)
	return err
}

// KruiseAppsRunning reports why CloneSets cannot be used: the suite did not ask for OpenKruise, or
// its manager has exited. nil means the OpenKruise manager runs.
func (c *Cluster) KruiseAppsRunning() error {
	if c.kruiseApps == nil {
		return errors.New("OpenKruise (Options.KruiseApps) is not part of this suite")
	}
	if !c.kruiseApps.Running() {
		return fmt.Errorf("kruise-manager exited (log: %s): %w", c.kruiseApps.LogPath(), c.kruiseApps.ExitErr())
	}
	return nil
}

func (c *Cluster) installOptionalCRDs(ctx context.Context) error {
	var patterns []string
	if c.opts.GatewayAPICRDs {
		dir, err := ModuleDir(ctx, c.RepoRoot, "crds", "sigs.k8s.io/gateway-api")
		if err != nil {
			return err
		}
		patterns = append(patterns, filepath.Join(dir, "config", "crd", "experimental", "gateway.networking.*.yaml"))
	}
	if c.opts.IstioCRDs {
		dir, err := ModuleDir(ctx, c.RepoRoot, "crds", "istio.io/api")
		if err != nil {
			return err
		}
		patterns = append(patterns, filepath.Join(dir, "kubernetes", "customresourcedefinitions.gen.yaml"))
	}
	if c.opts.LanesCRDs {
		patterns = append(patterns, filepath.Join(c.RepoRoot, "charts", "lanes", "crds", "*.yaml"))
	}
	if len(patterns) == 0 {
		return nil
	}
	objs, err := ReadYAMLFiles(patterns...)
	if err != nil {
		return err
	}
	// Gateway API's folder also holds a ValidatingAdmissionPolicy that guards CRD upgrades; only
	// the CRDs are installed.
	var crds []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		}
	}
	return InstallCRDs(ctx, c.Client, crds)
}

// stop stops every process once; with keepLogs the component logs are copied to ArtifactsDir before
// the work directory is removed.
func (c *Cluster) stop(keepLogs bool) error {
	c.stopOnce.Do(func() {
		c.stopErr = c.sup.Stop(stopGrace)
		if keepLogs || os.Getenv("LANES_E2E_KEEP") != "" {
			dst := filepath.Join(c.ArtifactsDir, "logs")
			if err := copyDir(c.sup.logDir, dst); err != nil {
				c.stopErr = errors.Join(c.stopErr, err)
			} else {
				fmt.Fprintf(os.Stderr, "e2e: component logs kept in %s\n", dst)
			}
		}
		if err := os.RemoveAll(c.dir); err != nil {
			c.stopErr = errors.Join(c.stopErr, fmt.Errorf("removing the work directory: %w", err))
		}
	})
	return c.stopErr
}

// removeAbandonedWorkDirs deletes the work directories of test binaries that died without cleaning
// up (a panic or SIGKILL ends their processes but cannot run Go code). Directories of live test
// binaries, or without an owner file, are left alone.
func removeAbandonedWorkDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), workDirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// Scheme returns a scheme with client-go's types and Kruise's rollouts.kruise.io v1alpha1 and v1beta1.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, rolloutsv1alpha1.AddToScheme, rolloutsv1beta1.AddToScheme, lanesv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("building the e2e scheme: %v", err))
		}
	}
	return s
}

// Namespace creates a namespace for one scenario, named after the test. When the test fails, its
// objects and the tail of every component log are dumped first; the namespace is deleted afterwards
// either way (without waiting: there is no kubelet to slow it down and the cluster is thrown away).
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())}}
	if err := c.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("creating the test namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if t.Failed() {
			c.DumpOnFailure(ctx, t, ns.Name)
		}
		if err := c.Client.Delete(ctx, ns); err != nil {
			t.Logf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// StartProcess runs spec (for example our own lanes-manager, with Env KUBECONFIG=c.Kubeconfig) for
// the rest of the test: it is stopped in the test's cleanup, and the tail of its log is written to
// the test log if the test failed. It also ends with the suite like every other process.
func (c *Cluster) StartProcess(t testing.TB, spec ProcessSpec) *Process {
	t.Helper()
	p, err := c.sup.Start(spec)
	if err != nil {
		t.Fatalf("starting %s: %v", spec.Name, err)
	}
	stopAtCleanup(t, p)
	return p
}

// stopAtCleanup stops p in the test's cleanup and, if the test failed, writes the tail of its
// log to the test log.
func stopAtCleanup(t testing.TB, p *Process) {
	t.Cleanup(func() {
		if err := p.Stop(stopGrace); err != nil {
			t.Errorf("stopping %s: %v", p.Name(), err)
		}
		if t.Failed() {
			t.Logf("----- %s (last 60 lines of %s)\n%s", p.Name(), p.LogPath(), p.Tail(60))
		}
	})
}

// KruiseRunning reports an error when the Kruise manager has exited.
func (c *Cluster) KruiseRunning() error {
	if c.kruise == nil || c.kruise.Running() {
		return nil
	}
	return fmt.Errorf("kruise-rollouts-manager exited (log: %s): %w", c.kruise.LogPath(), c.kruise.ExitErr())
}

func namespacePrefix(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	p := strings.Trim(b.String(), "-")
	if len(p) > 40 {
		p = p[:40]
	}
	return strings.TrimRight(p, "-") + "-"
}
