//go:build e2e

package framework

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// The pod runner plays the kubelet for the lane demo's image. kwok pods run no process; for every
// pod of a watched namespace whose container image is the lane demo (an image repository ending
// in "/lane-demo" or named "lane-demo"), the runner starts the lane-demo binary built from
// examples/lane-demo once the pod has an IP and is Ready, with what a kubelet would hand the
// container:
//   - the container's env: plain values, `$(VAR)` references to earlier variables, and the
//     downward API fields metadata.name, metadata.namespace, metadata.uid,
//     metadata.labels['k'], metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
//     status.podIP and status.hostIP (anything else is refused with a test error);
//   - downwardAPI volumes of metadata.labels / metadata.annotations / metadata.name /
//     metadata.namespace, written in the kubelet's `key="value"` format into a folder of the pod
//     and rewritten whenever the pod's labels or annotations change. A process has no mount
//     namespace of its own, so an env value that starts with the volume's mountPath is pointed at
//     that folder instead;
//   - for a pod annotated `inject.istio.io/templates: grpc-agent` (Istio's proxyless gRPC
//     injection), the xDS bootstrap the istio-agent would write, in GRPC_XDS_BOOTSTRAP.
//
// A server binds the pod's own IP (the pod range is local in the test network). When the pod is
// deleted, its endpoints go first; its process keeps serving for the pod's grace period (at most
// podDrain, like a preStop sleep) so that gateways and xDS clients still holding the endpoint do
// not fail, and then gets SIGTERM. A pod that turns not Ready keeps its process, as a container
// failing its readiness probe keeps running.

const (
	// podDrain bounds how long a deleted pod's process keeps serving.
	podDrain = 5 * time.Second
	// grpcAgentAnnotation marks a pod for Istio's proxyless gRPC injection.
	grpcAgentAnnotation = "inject.istio.io/templates"
)

// PodRunner runs the lane demo's pods of one namespace.
type PodRunner struct {
	c         *Cluster
	report    func(error)
	namespace string
	binary    string
	dir       string

	mu      sync.Mutex
	running map[types.UID]*podProcess
	stopped bool

	close     func()
	closeOnce sync.Once
}

// podProcess is the process of one pod.
type podProcess struct {
	pod     *corev1.Pod
	ip      string
	proc    *Process
	dir     string
	labels  string // the last labels file content written
	stopped bool
}

// RunPods starts a PodRunner for namespace, for the rest of the test: every process it started is
// stopped in the test's cleanup. A process that exits while its pod exists, or a pod that cannot
// run, fails the test with the tail of its log.
func (c *Cluster) RunPods(t testing.TB, namespace string) *PodRunner {
	t.Helper()
	r, err := c.LaunchPodRunner(namespace, func(err error) { t.Errorf("pod runner: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// LaunchPodRunner is RunPods without a testing.TB: problems go to report, and the caller ends
// the runner with Close.
func (c *Cluster) LaunchPodRunner(namespace string, report func(error)) (*PodRunner, error) {
	bin := prebuilt("lane-demo")
	if bin == "" {
		return nil, errors.New("the lane-demo binary was not built before entering the test network (framework.RunInTestNetwork builds it)")
	}
	dir, err := os.MkdirTemp(c.dir, "pods-")
	if err != nil {
		return nil, fmt.Errorf("creating the pod runner's folder: %w", err)
	}
	r := &PodRunner{c: c, report: report, namespace: namespace, binary: bin, dir: dir, running: map[types.UID]*podProcess{}}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("building a clientset: %w", err)
	}
	lw := toolscache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", namespace, fields.Everything())
	informer := toolscache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, toolscache.Indexers{})
	events := make(chan podEvent, 1024)
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { events <- podEvent{pod: obj.(*corev1.Pod)} },
		UpdateFunc: func(_, obj any) { events <- podEvent{pod: obj.(*corev1.Pod)} },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				events <- podEvent{pod: p, deleted: true}
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watching pods: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go informer.Run(ctx.Done())
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				r.handle(ev)
			}
		}
	}()
	r.close = func() {
		cancel()
		<-done
		r.stopAll()
	}
	return r, nil
}

// Close stops watching and stops every process the runner started.
func (r *PodRunner) Close() { r.closeOnce.Do(r.close) }

type podEvent struct {
	pod     *corev1.Pod
	deleted bool
}

func (r *PodRunner) handle(ev podEvent) {
	pod := ev.pod
	if !isLaneDemoPod(pod) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	p := r.running[pod.UID]
	switch {
	case ev.deleted || pod.DeletionTimestamp != nil:
		if p != nil && !p.stopped {
			p.stopped = true
			drain := podDrain
			if g := pod.Spec.TerminationGracePeriodSeconds; g != nil && time.Duration(*g)*time.Second < drain {
				drain = time.Duration(*g) * time.Second
			}
			go func() {
				time.Sleep(drain)
				_ = p.proc.Stop(stopGrace)
			}()
		}
	case p != nil:
		r.refreshDownwardFiles(p, pod)
	case pod.Status.PodIP != "" && podReady(pod):
		r.start(pod)
	}
}

// start runs the process of pod; r.mu is held.
func (r *PodRunner) start(pod *corev1.Pod) {
	// kwok may hand a deleted pod's address to a new pod while the old process still drains.
	for uid, other := range r.running {
		if other.ip == pod.Status.PodIP {
			other.stopped = true
			_ = other.proc.Stop(stopGrace)
			delete(r.running, uid)
		}
	}
	dir := filepath.Join(r.dir, pod.Name+"-"+string(pod.UID)[:8])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.report(fmt.Errorf("pod %s: %w", pod.Name, err))
		return
	}
	p := &podProcess{pod: pod.DeepCopy(), ip: pod.Status.PodIP, dir: dir}
	env, err := r.containerEnv(p, pod)
	if err != nil {
		r.report(fmt.Errorf("pod %s cannot run: %w", pod.Name, err))
		return
	}
	proc, err := r.c.sup.Start(ProcessSpec{Name: "pod-" + pod.Namespace + "-" + pod.Name, Path: r.binary, Env: env, Dir: dir})
	if err != nil {
		r.report(fmt.Errorf("starting the process of pod %s: %w", pod.Name, err))
		return
	}
	p.proc = proc
	r.running[pod.UID] = p
	go func() {
		<-proc.Exited()
		r.mu.Lock()
		defer r.mu.Unlock()
		if !p.stopped && !r.stopped {
			r.report(fmt.Errorf("the process of pod %s exited while the pod exists: %w\n%s", pod.Name, proc.ExitErr(), proc.Tail(20)))
		}
	}()
}

// containerEnv builds the environment of the pod's first lane-demo container, with its
// downwardAPI volumes written into p.dir.
func (r *PodRunner) containerEnv(p *podProcess, pod *corev1.Pod) ([]string, error) {
	ctr := laneDemoContainer(pod)
	mounts := map[string]string{} // mountPath -> folder
	for _, m := range ctr.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.DownwardAPI != nil {
				mounts[path.Clean(m.MountPath)] = filepath.Join(p.dir, "volumes", v.Name)
			}
		}
	}
	if err := r.writeDownwardFiles(p, pod); err != nil {
		return nil, err
	}
	vars := map[string]string{}
	var env []string
	set := func(k, v string) {
		vars[k] = v
		env = append(env, k+"="+v)
	}
	for _, e := range ctr.Env {
		var v string
		switch {
		case e.ValueFrom == nil:
			v = expandEnv(e.Value, vars)
		case e.ValueFrom.FieldRef != nil:
			fv, err := podField(pod, e.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v = fv
		default:
			return nil, fmt.Errorf("env %s: only values and downward API fieldRefs are supported by the pod runner", e.Name)
		}
		for mp, folder := range mounts {
			if v == mp || strings.HasPrefix(v, mp+"/") {
				v = folder + strings.TrimPrefix(v, mp)
			}
		}
		set(e.Name, v)
	}
	if pod.Annotations[grpcAgentAnnotation] == "grpc-agent" {
		bootstrap, err := r.c.grpcBootstrap(pod)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(p.dir, "grpc-bootstrap.json")
		if err := os.WriteFile(file, bootstrap, 0o644); err != nil {
			return nil, fmt.Errorf("writing the xDS bootstrap: %w", err)
		}
		set("GRPC_XDS_BOOTSTRAP", file)
	}
	return env, nil
}

// writeDownwardFiles writes every downwardAPI volume of the pod; r.mu is held.
func (r *PodRunner) writeDownwardFiles(p *podProcess, pod *corev1.Pod) error {
	for _, v := range pod.Spec.Volumes {
		if v.DownwardAPI == nil {
			continue
		}
		folder := filepath.Join(p.dir, "volumes", v.Name)
		if err := os.MkdirAll(folder, 0o755); err != nil {
			return err
		}
		for _, item := range v.DownwardAPI.Items {
			if item.FieldRef == nil {
				return fmt.Errorf("volume %s: only fieldRef items are supported by the pod runner", v.Name)
			}
			var content string
			switch item.FieldRef.FieldPath {
			case "metadata.labels":
				content = formatDownwardMap(pod.Labels)
				p.labels = content
			case "metadata.annotations":
				content = formatDownwardMap(pod.Annotations)
			default:
				fv, err := podField(pod, item.FieldRef.FieldPath)
				if err != nil {
					return fmt.Errorf("volume %s: %w", v.Name, err)
				}
				content = fv
			}
			// Write and rename, so a reader never sees half a file (the kubelet swaps a symlink).
			file := filepath.Join(folder, item.Path)
			tmp := file + ".tmp"
			if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp, file); err != nil {
				return err
			}
		}
	}
	return nil
}

// refreshDownwardFiles rewrites the pod's downward API files when its labels or annotations
// changed; r.mu is held.
func (r *PodRunner) refreshDownwardFiles(p *podProcess, pod *corev1.Pod) {
	if formatDownwardMap(pod.Labels) == p.labels && maps.Equal(pod.Annotations, p.pod.Annotations) {
		return
	}
	p.pod = pod.DeepCopy()
	if err := r.writeDownwardFiles(p, pod); err != nil {
		r.report(fmt.Errorf("pod %s: updating its downward API files: %w", pod.Name, err))
	}
}

func (r *PodRunner) stopAll() {
	r.mu.Lock()
	r.stopped = true
	procs := make([]*podProcess, 0, len(r.running))
	for _, p := range r.running {
		p.stopped = true
		procs = append(procs, p)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.proc.Stop(stopGrace)
		}()
	}
	wg.Wait()
}

// isLaneDemoPod says whether the pod runs the lane demo's image.
func isLaneDemoPod(pod *corev1.Pod) bool { return laneDemoContainer(pod) != nil }

func laneDemoContainer(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.Containers {
		image := pod.Spec.Containers[i].Image
		if at := strings.IndexByte(image, '@'); at >= 0 {
			image = image[:at]
		}
		if colon := strings.LastIndexByte(image, ':'); colon > strings.LastIndexByte(image, '/') {
			image = image[:colon]
		}
		if image == "lane-demo" || strings.HasSuffix(image, "/lane-demo") {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// podField resolves a downward API field path.
func podField(pod *corev1.Pod, fieldPath string) (string, error) {
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if strings.HasPrefix(fieldPath, prefix+"['") && strings.HasSuffix(fieldPath, "']") {
			return m[strings.TrimSuffix(strings.TrimPrefix(fieldPath, prefix+"['"), "']")], nil
		}
	}
	return "", fmt.Errorf("the pod runner does not resolve the field %q", fieldPath)
}

// formatDownwardMap formats labels or annotations as the kubelet writes them into a downward API
// file: sorted `key="value"` lines, the value quoted.
func formatDownwardMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	return b.String()
}

// expandEnv replaces $(NAME) with the value of an earlier variable, as the kubelet does; $$ is a
// literal $, and a reference to an unknown variable is left as it is.
func expandEnv(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// grpcBootstrap returns the xDS bootstrap Istio's agent would write for a proxyless gRPC pod.
func (c *Cluster) grpcBootstrap(pod *corev1.Pod) ([]byte, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	b, err := c.xdsBootstrap(pod.Status.PodIP, pod.Name, pod.Namespace, map[string]any{
		"NAME": pod.Name, "LABELS": maps.Clone(pod.Labels), "SERVICE_ACCOUNT": sa,
	})
	if err != nil {
		return nil, fmt.Errorf("pod %s asks for proxyless gRPC (%s: grpc-agent): %w", pod.Name, grpcAgentAnnotation, err)
	}
	return b, nil
}
