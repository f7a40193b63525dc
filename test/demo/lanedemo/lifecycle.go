//go:build e2e

package lanedemo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kruise-lanes/kruise-lanes/luascripts"
	"github.com/kruise-lanes/kruise-lanes/test/e2e/framework"
)

// Names and versions of examples/mse.
const (
	// Lane is the TrafficRouting of the example.
	Lane = "mse-traffic"
	// CanaryIngress is the Ingress Kruise writes for the lane's entry (A's Ingress).
	CanaryIngress = "spring-cloud-a-canary"
	// BaseVersion is the version every service runs in examples/lane-demo/chain.yaml.
	BaseVersion = "v1"
	// FirstRelease is the version of A and C the first pass releases and approves.
	FirstRelease = "v2"
	// SecondRelease is the version of A and C the second pass releases and rolls back.
	SecondRelease = "v3"

	laneLabel   = "alicloud.service.tag"
	providerKey = "lua.traffic.routing.ingress.mse"
	replicas    = 2
)

// Chain is the example's call chain, in order: A -> B -> C.
func Chain() []string { return []string{"spring-cloud-a", "spring-cloud-b", "spring-cloud-c"} }

// Released are the services the demo releases; B has no canary.
func Released() []string { return []string{"spring-cloud-a", "spring-cloud-c"} }

// Image is the lane demo's image at a version, as examples/lane-demo/chain.yaml names it.
func Image(version string) string { return "kruise-lanes/lane-demo:" + version }

// Config is where and how the demo runs.
type Config struct {
	// Client and Kubeconfig reach the cluster, which runs Kruise Rollouts and lanes-manager.
	Client     client.Client
	Kubeconfig string
	// Namespace exists and is empty.
	Namespace string
	// ExamplesDir holds ingress.yaml and lane.yaml (examples/mse).
	ExamplesDir string
	// AppFile holds the chain's Services and Deployments (examples/lane-demo/chain.yaml).
	AppFile string
	// Mesh, when set, is the kruise-lanes.io/mesh the demo gives the lane: on the local control
	// plane there is no MSE agent to route the hops, istiod does.
	Mesh string
	// Probes are the requests the demo sends, and prints, at each phase.
	Probes []Probe
	// Out receives the transcript.
	Out io.Writer
	// Timeout bounds each wait for Kruise or lanes-manager; zero means 90 s.
	Timeout time.Duration
}

// Probe is one request the demo sends at each phase, printed as a user would type it.
type Probe struct {
	// Command is what a user would type, printed before the answers.
	Command string
	// Send sends the request once.
	Send framework.Sender
	// Times is how often it is sent per phase (a gateway alternates between a Service's pods).
	Times int
	// Exact: the demo waits until this probe answers exactly what the phase's lane should give
	// (A[gray](v2) -> B[base](v1) -> C[gray](v2) while A and C are released).
	Exact bool
}

// Snapshot is what the demo showed at the end of a phase.
type Snapshot struct {
	// Answers are the answers of each probe, by its Command.
	Answers map[string][]string
	// Trace is the line `kubectl lanes trace` printed.
	Trace string
	// Status is what `kubectl lanes status` printed.
	Status string
	// CanaryAnnotations are the canary Ingress's annotations; nil when there was no canary Ingress.
	CanaryAnnotations map[string]string
}

// Result is what the demo showed, phase by phase.
type Result struct {
	Deployed, Released, Approved, Rereleased, RolledBack Snapshot
	// Approve and Rollback are the outputs of `kubectl lanes approve` and `kubectl lanes rollback`.
	Approve, Rollback string
}

type demo struct {
	cfg Config
	// stable is the version each service's stable pods run; canary the version being released.
	stable map[string]string
	canary string
}

// Run plays the lane's lifecycle and prints it to cfg.Out. It stops at the first step that does
// not reach its expected state within cfg.Timeout, with an error that says which.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 90 * time.Second
	}
	d := &demo{cfg: cfg, stable: map[string]string{}}
	for _, svc := range Chain() {
		d.stable[svc] = BaseVersion
	}
	r := &Result{}
	if err := d.provider(ctx); err != nil {
		return r, err
	}
	var err error
	if r.Deployed, err = d.deploy(ctx); err != nil {
		return r, err
	}
	Phase(cfg.Out, "Release new versions of A and C (%s); B keeps %s: it has no canary", FirstRelease, BaseVersion)
	if r.Released, err = d.release(ctx, FirstRelease); err != nil {
		return r, err
	}
	if r.Approve, r.Approved, err = d.approve(ctx); err != nil {
		return r, err
	}
	Phase(cfg.Out, "Second pass: release A and C again (%s)", SecondRelease)
	if r.Rereleased, err = d.release(ctx, SecondRelease); err != nil {
		return r, err
	}
	r.Rollback, r.RolledBack, err = d.rollback(ctx)
	return r, err
}

// provider waits until Kruise's ConfigMap holds our mse provider, which lanes-manager installs.
func (d *demo) provider(ctx context.Context) error {
	Phase(d.cfg.Out, "lanes-manager installs our mse provider into Kruise's ConfigMap")
	want, err := luascripts.Ingress("mse")
	if err != nil {
		return err
	}
	key := client.ObjectKey{Namespace: framework.KruiseNamespace, Name: framework.KruiseConfigMap}
	err = framework.WaitFor(ctx, d.cfg.Timeout, "our mse provider in "+key.String(), func(ctx context.Context) (bool, error) {
		cm := &corev1.ConfigMap{}
		if err := d.cfg.Client.Get(ctx, key, cm); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return cm.Data[providerKey] == string(want), nil
	})
	if err != nil {
		return err
	}
	d.say("ConfigMap %s has key %s (%d bytes of Lua):", key, providerKey, len(want))
	d.say("Kruise now runs our script, not its built-in one, for every Ingress of class type mse.")
	return nil
}

// deploy applies examples/mse and shows the lane at rest.
func (d *demo) deploy(ctx context.Context) (Snapshot, error) {
	Phase(d.cfg.Out, "Deploy A -> B -> C (lane-demo hops, examples/lane-demo/chain.yaml) on %s, and A's MSE Ingress (examples/mse)", BaseVersion)
	if err := d.apply(ctx, d.cfg.AppFile, filepath.Join(d.cfg.ExamplesDir, "ingress.yaml")); err != nil {
		return Snapshot{}, err
	}
	for _, svc := range Chain() {
		if err := framework.WaitForDeploymentAvailable(ctx, d.cfg.Client, client.ObjectKey{Namespace: d.cfg.Namespace, Name: svc}, d.cfg.Timeout); err != nil {
			return Snapshot{}, err
		}
	}
	Phase(d.cfg.Out, "Declare the lane %s (a Kruise TrafficRouting) and one Rollout per service", Lane)
	if err := d.apply(ctx, filepath.Join(d.cfg.ExamplesDir, "lane.yaml")); err != nil {
		return Snapshot{}, err
	}
	if d.cfg.Mesh != "" {
		if err := d.annotateMesh(ctx); err != nil {
			return Snapshot{}, err
		}
	}
	if _, err := d.show(ctx, d.wait("healthy")...); err != nil {
		return Snapshot{}, err
	}
	if _, err := d.show(ctx, "list"); err != nil {
		return Snapshot{}, err
	}
	return d.snapshot(ctx, nil, BaseVersion)
}

// release sets the image of A and C to version and shows the lane paused at its first batch.
func (d *demo) release(ctx context.Context, version string) (Snapshot, error) {
	for _, svc := range Released() {
		if err := d.setVersion(ctx, svc, version); err != nil {
			return Snapshot{}, err
		}
	}
	d.canary = version
	if _, err := d.show(ctx, d.wait("paused")...); err != nil {
		return Snapshot{}, err
	}
	return d.snapshot(ctx, Released(), "")
}

// approve approves the lane and shows it completed: every pod of A and C on the first release.
func (d *demo) approve(ctx context.Context) (string, Snapshot, error) {
	Phase(d.cfg.Out, "Approve the lane: each paused member goes on to all its pods, then the lane closes")
	out, err := d.show(ctx, "approve", Lane)
	if err != nil {
		return out, Snapshot{}, err
	}
	for _, goal := range []string{"completed", "healthy"} {
		if _, err := d.show(ctx, d.wait(goal)...); err != nil {
			return out, Snapshot{}, err
		}
	}
	for _, svc := range Released() {
		d.stable[svc] = d.canary
	}
	s, err := d.snapshot(ctx, nil, FirstRelease)
	return out, s, err
}

// rollback rolls the lane back and shows A and C back on the first release.
func (d *demo) rollback(ctx context.Context) (string, Snapshot, error) {
	Phase(d.cfg.Out, "Roll the lane back: A and C return to %s, the lane closes", FirstRelease)
	out, err := d.show(ctx, "rollback", Lane)
	if err != nil {
		return out, Snapshot{}, err
	}
	if _, err := d.show(ctx, d.wait("healthy")...); err != nil {
		return out, Snapshot{}, err
	}
	s, err := d.snapshot(ctx, nil, FirstRelease)
	if err != nil {
		return out, s, err
	}
	d.say("Kruise keeps a cancelled release's last step in the Rollout's status: phase Healthy and")
	d.say("no lane pods are what say the release is over.")
	return out, s, nil
}

// snapshot waits until the lane is settled: the trace shows the lane tag exactly on the hops in
// canaries and the canary Ingress exists exactly while there are canaries; with stableVersion, also
// until A and C run only that version. Then it prints the trace, the canary Ingress, the member
// states and the pods.
func (d *demo) snapshot(ctx context.Context, canaries []string, stableVersion string) (Snapshot, error) {
	want := expectedTrace(canaries)
	chain := "--chain=" + strings.Join(Chain(), ",")
	var last string
	err := framework.WaitFor(ctx, d.cfg.Timeout, "the lane trace "+want, func(ctx context.Context) (bool, error) {
		out, err := d.lanes(ctx, "trace", Lane, chain)
		if err != nil {
			return false, err
		}
		last = strings.TrimSpace(out)
		if last != want {
			return false, framework.Pending("trace is %s", last)
		}
		return true, nil
	})
	if err != nil {
		return Snapshot{}, err
	}
	if stableVersion != "" {
		for _, svc := range Released() {
			if err := framework.WaitForReadyPods(ctx, d.cfg.Client, d.cfg.Namespace, map[string]string{"app": svc}, d.cfg.Timeout,
				map[string]int{Image(stableVersion): replicas}); err != nil {
				return Snapshot{}, err
			}
		}
	}
	annotations, err := d.canaryIngress(ctx, len(canaries) > 0)
	if err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{CanaryAnnotations: annotations}
	out, err := d.show(ctx, "trace", Lane, chain)
	if err != nil {
		return s, err
	}
	s.Trace = strings.TrimSpace(out)
	if s.Answers, err = d.probe(ctx, canaries); err != nil {
		return s, err
	}
	if annotations != nil {
		d.showAnnotations(CanaryIngress, annotations)
	} else {
		d.say("No Ingress %s: the lane's entry is closed, every request goes to base.", CanaryIngress)
	}
	if s.Status, err = d.show(ctx, "status", Lane); err != nil {
		return s, err
	}
	return s, d.showPods(ctx)
}

// expectedTrace is the trace of the chain with the lane tag on the hops in canaries.
func expectedTrace(canaries []string) string {
	var hops []string
	for _, svc := range Chain() {
		version := "base"
		for _, c := range canaries {
			if c == svc {
				version = "gray"
			}
		}
		hops = append(hops, svc+"["+version+"]")
	}
	return strings.Join(hops, " -> ")
}

// canaryIngress waits until the canary Ingress exists (with Kruise's canary annotation) or is gone,
// as present says, and returns its annotations (nil when gone).
func (d *demo) canaryIngress(ctx context.Context, present bool) (map[string]string, error) {
	key := client.ObjectKey{Namespace: d.cfg.Namespace, Name: CanaryIngress}
	what := "Ingress " + CanaryIngress + " to be removed"
	if present {
		what = "Ingress " + CanaryIngress + " with Kruise's canary annotations"
	}
	ing := &networkingv1.Ingress{}
	err := framework.WaitFor(ctx, d.cfg.Timeout, what, func(ctx context.Context) (bool, error) {
		err := d.cfg.Client.Get(ctx, key, ing)
		switch {
		case apierrors.IsNotFound(err):
			return !present, nil
		case err != nil:
			return false, err
		case !ing.DeletionTimestamp.IsZero():
			return !present, nil
		}
		return present && ing.Annotations["nginx.ingress.kubernetes.io/canary"] == "true", nil
	})
	if err != nil || !present {
		return nil, err
	}
	return ing.Annotations, nil
}

// wait is a `kubectl lanes wait` command line for goal.
func (d *demo) wait(goal string) []string {
	return []string{"wait", Lane, "--for=" + goal, "--timeout=" + d.cfg.Timeout.String(), "--interval=500ms"}
}

// apply applies files of the repository, as `kubectl apply -f` does.
func (d *demo) apply(ctx context.Context, files ...string) error {
	var args []string
	for _, f := range files {
		rel, err := filepath.Rel(filepath.Dir(filepath.Dir(d.cfg.ExamplesDir)), f)
		if err != nil {
			rel = f
		}
		args = append(args, "-f "+rel)
	}
	d.command(fmt.Sprintf("kubectl apply -n %s %s", d.cfg.Namespace, strings.Join(args, " ")))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading the example: %w", err)
		}
		if err := framework.ApplyYAML(ctx, d.cfg.Client, d.cfg.Namespace, data); err != nil {
			return fmt.Errorf("applying %s: %w", f, err)
		}
	}
	return nil
}

// annotateMesh gives the lane its mesh, as `kubectl annotate` does.
func (d *demo) annotateMesh(ctx context.Context) error {
	d.say("There is no MSE here: its Java agent, which routes seed 002's hops by pod label, becomes istiod,")
	d.say("which routes the lane-demo hops (proxyless gRPC) by the routes lanes-manager writes for an istio lane.")
	d.command(fmt.Sprintf("kubectl annotate -n %s trafficrouting %s kruise-lanes.io/mesh=%s", d.cfg.Namespace, Lane, d.cfg.Mesh))
	tr := &rolloutsv1alpha1.TrafficRouting{}
	if err := d.cfg.Client.Get(ctx, client.ObjectKey{Namespace: d.cfg.Namespace, Name: Lane}, tr); err != nil {
		return fmt.Errorf("reading the lane: %w", err)
	}
	base := tr.DeepCopy()
	if tr.Annotations == nil {
		tr.Annotations = map[string]string{}
	}
	tr.Annotations["kruise-lanes.io/mesh"] = d.cfg.Mesh
	if err := d.cfg.Client.Patch(ctx, tr, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("annotating the lane: %w", err)
	}
	return nil
}

// expectedAnswer is what the chain answers a lane request with the canaries released: a
// canary hop in the lane on the version being released, every other hop on base.
func (d *demo) expectedAnswer(canaries []string) string {
	var hops []string
	for _, svc := range Chain() {
		lane, version := "base", d.stable[svc]
		if slices.Contains(canaries, svc) {
			lane, version = "gray", d.canary
		}
		hops = append(hops, svc+"["+lane+"]("+version+")")
	}
	return strings.Join(hops, " -> ")
}

// probe waits until every Exact probe answers what the lane should give now, then sends every
// probe and prints its answers under its command line.
func (d *demo) probe(ctx context.Context, canaries []string) (map[string][]string, error) {
	want := d.expectedAnswer(canaries)
	for _, p := range d.cfg.Probes {
		if !p.Exact {
			continue
		}
		if _, err := framework.WaitForAnswers(ctx, d.cfg.Timeout, p.Command+" to answer "+want, p.Send, 3, func(b string) bool { return b == want }); err != nil {
			return nil, err
		}
	}
	out := map[string][]string{}
	for _, p := range d.cfg.Probes {
		d.command(p.Command)
		for _, r := range framework.Sample(ctx, p.Send, max(p.Times, 1)) {
			answer := r.Body
			if r.Failed() {
				return out, fmt.Errorf("%s: %s", p.Command, r)
			}
			fmt.Fprintf(d.cfg.Out, "    %s\n", answer)
			out[p.Command] = append(out[p.Command], answer)
		}
	}
	return out, nil
}

// setVersion moves a service to version: its container's image and VERSION, as `kubectl set
// image` and `kubectl set env` do (one strategic merge patch of the change).
func (d *demo) setVersion(ctx context.Context, svc, version string) error {
	d.command(fmt.Sprintf("kubectl set image -n %s deployment/%s %s=%s", d.cfg.Namespace, svc, svc, Image(version)))
	d.command(fmt.Sprintf("kubectl set env -n %s deployment/%s VERSION=%s", d.cfg.Namespace, svc, version))
	dep := &appsv1.Deployment{}
	if err := d.cfg.Client.Get(ctx, client.ObjectKey{Namespace: d.cfg.Namespace, Name: svc}, dep); err != nil {
		return fmt.Errorf("reading deployment %s: %w", svc, err)
	}
	base := dep.DeepCopy()
	found := false
	for i := range dep.Spec.Template.Spec.Containers {
		c := &dep.Spec.Template.Spec.Containers[i]
		if c.Name != svc {
			continue
		}
		c.Image, found = Image(version), true
		for j := range c.Env {
			if c.Env[j].Name == "VERSION" {
				c.Env[j].Value = version
			}
		}
	}
	if !found {
		return fmt.Errorf("deployment %s has no container named %s", svc, svc)
	}
	if err := d.cfg.Client.Patch(ctx, dep, client.StrategicMergeFrom(base)); err != nil {
		return fmt.Errorf("moving %s to %s: %w", svc, version, err)
	}
	return nil
}
