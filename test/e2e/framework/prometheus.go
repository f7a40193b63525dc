//go:build e2e

package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"
)

// PrometheusScrapeInterval is how often the harness's Prometheus scrapes the lane demo's pods.
const PrometheusScrapeInterval = time.Second

// Prometheus is a Prometheus server (built by `make tools` from test/tools/prometheus) on a
// loopback port of the test network, scraping /metrics of every lane demo pod of one namespace
// each PrometheusScrapeInterval. Its targets come from file-based service discovery: the harness
// watches the namespace's pods and rewrites the targets file whenever a lane demo pod gets an IP
// or goes away. A pod is scraped on its container port named "metrics", else "http" (the lane
// demo serves /metrics on its HTTP server unless METRICS_ADDR is set), with the labels
// namespace and pod.
type Prometheus struct {
	*Process
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string

	stopWatch func()
}

// StartPrometheus runs Prometheus for namespace for the rest of the test (see LaunchPrometheus);
// it is stopped in the test's cleanup, and the tail of its log is written to the test log if the
// test failed.
func (c *Cluster) StartPrometheus(t testing.TB, namespace string) *Prometheus {
	t.Helper()
	p, err := c.LaunchPrometheus(t.Context(), namespace)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stopWatch()
		if err := p.Stop(stopGrace); err != nil {
			t.Errorf("stopping %s: %v", p.Name(), err)
		}
		if t.Failed() {
			t.Logf("----- %s (last 30 lines of %s)\n%s", p.Name(), p.LogPath(), p.Tail(30))
		}
	})
	return p
}

// LaunchPrometheus starts Prometheus and the target discovery of namespace, and waits until the
// server is ready. The caller stops it (Stop, after which queries fail as with an unreachable
// server); it also ends with the Cluster.
func (c *Cluster) LaunchPrometheus(ctx context.Context, namespace string) (*Prometheus, error) {
	ports, dir, err := c.prepareDataPlane("prometheus", 1)
	if err != nil {
		return nil, err
	}
	targets := filepath.Join(dir, "targets.json")
	if err := writeTargets(targets, nil); err != nil {
		return nil, err
	}
	config := map[string]any{
		"global": map[string]any{
			"scrape_interval":     PrometheusScrapeInterval.String(),
			"scrape_timeout":      PrometheusScrapeInterval.String(),
			"evaluation_interval": PrometheusScrapeInterval.String(),
		},
		"scrape_configs": []any{map[string]any{
			"job_name":        "lane-demo",
			"file_sd_configs": []any{map[string]any{"files": []string{targets}, "refresh_interval": "1s"}},
		}},
	}
	data, err := yaml.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("writing prometheus's configuration: %w", err)
	}
	cfg := filepath.Join(dir, "prometheus.yaml")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		return nil, fmt.Errorf("writing prometheus's configuration: %w", err)
	}
	stopWatch, err := c.watchScrapeTargets(namespace, targets)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	p, err := c.sup.Start(ProcessSpec{
		Name: "prometheus-" + namespace,
		Path: filepath.Join(c.ToolsBin, "prometheus"),
		Args: []string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--log.level=warn",
		},
		Dir: dir,
	})
	if err != nil {
		stopWatch()
		return nil, err
	}
	pr := &Prometheus{Process: p, URL: "http://" + addr, stopWatch: stopWatch}
	if err := waitHealthy(ctx, http.DefaultClient, "prometheus", pr.URL+"/-/ready", 60*time.Second); err != nil {
		stopWatch()
		_ = p.Stop(stopGrace)
		return nil, fmt.Errorf("%w\n%s", err, p.Tail(30))
	}
	return pr, nil
}

// String names the server for logs.
func (p *Prometheus) String() string { return "prometheus at " + p.URL }

// targetGroup is one entry of a file_sd targets file.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// writeTargets replaces the targets file at once (Prometheus never reads half of it).
func writeTargets(path string, groups []targetGroup) error {
	if groups == nil {
		groups = []targetGroup{}
	}
	data, err := json.Marshal(groups)
	if err != nil {
		return fmt.Errorf("encoding the scrape targets: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing the scrape targets: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the scrape targets: %w", err)
	}
	return nil
}

// scrapeTarget is the address Prometheus scrapes a lane demo pod on ("" for none yet).
func scrapeTarget(pod *corev1.Pod) string {
	ctr := laneDemoContainer(pod)
	if ctr == nil || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
		return ""
	}
	var port int32
	for _, name := range []string{"metrics", "http"} {
		for _, p := range ctr.Ports {
			if p.Name == name && port == 0 {
				port = p.ContainerPort
			}
		}
	}
	if port == 0 {
		return ""
	}
	return net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(port)))
}

// watchScrapeTargets keeps the targets file at path current with the lane demo pods of
// namespace until the returned function is called.
func (c *Cluster) watchScrapeTargets(namespace, path string) (func(), error) {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("building a clientset: %w", err)
	}
	lw := toolscache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", namespace, fields.Everything())
	informer := toolscache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, toolscache.Indexers{})
	var mu sync.Mutex
	var last string
	rewrite := func(any) {
		mu.Lock()
		defer mu.Unlock()
		var groups []targetGroup
		for _, obj := range informer.GetStore().List() {
			pod := obj.(*corev1.Pod)
			if target := scrapeTarget(pod); target != "" {
				groups = append(groups, targetGroup{Targets: []string{target}, Labels: map[string]string{"namespace": pod.Namespace, "pod": pod.Name}})
			}
		}
		sort.Slice(groups, func(i, j int) bool { return groups[i].Labels["pod"] < groups[j].Labels["pod"] })
		key := fmt.Sprint(groups)
		if key == last {
			return
		}
		if err := writeTargets(path, groups); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: prometheus targets of %s not updated: %v\n", namespace, err)
			return
		}
		last = key
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    rewrite,
		UpdateFunc: func(_, obj any) { rewrite(obj) },
		DeleteFunc: rewrite,
	}); err != nil {
		return nil, fmt.Errorf("watching the pods of %s: %w", namespace, err)
	}
	stop := make(chan struct{})
	go informer.Run(stop)
	var once sync.Once
	return func() { once.Do(func() { close(stop) }) }, nil
}
