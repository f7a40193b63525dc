package analysis

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/test/toolbin"
)

// prometheusBin returns the Prometheus binary `make tools` builds, skipping when it is absent
// unless LANES_REQUIRE_TOOLS is set (`make chart-test`).
func prometheusBin(t *testing.T) string { return toolbin.Path(t, "prometheus", "LANES_REQUIRE_TOOLS") }

// freeLoopbackAddr returns a loopback address with a port nobody listens on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestMeasureWithRealPrometheus runs a measurement through the real Prometheus client against the
// real Prometheus server, scraping a loopback target that exposes lane-labelled metrics: the
// Querier interface takes the v1 API as it is, and the answers' shapes (vectors, matrices, NaN)
// are read as the fakes of the other tests assume. Everything stays on 127.0.0.1.
func TestMeasureWithRealPrometheus(t *testing.T) {
	bin := prometheusBin(t)

	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lane_demo_requests_total", Help: "Requests."}, []string{"service", "lane", "code"})
	latency := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lane_demo_latency_seconds", Help: "Latency."}, []string{"service", "lane"})
	reg.MustRegister(requests, latency)
	requests.WithLabelValues("a", "gray", "200").Add(99)
	requests.WithLabelValues("a", "gray", "500").Add(1)
	requests.WithLabelValues("c", "gray", "200").Add(100)
	requests.WithLabelValues("c", "gray", "500").Add(0)
	latency.WithLabelValues("a", "gray").Set(0.1)
	latency.WithLabelValues("a", "base").Set(0.1)
	latency.WithLabelValues("c", "gray").Set(0.3) // C's canary is slower
	latency.WithLabelValues("c", "base").Set(0.1)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()

	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\nscrape_configs:\n- job_name: lanes\n  static_configs:\n  - targets: [%q]\n",
		strings.TrimPrefix(target.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	logs, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(logs.Name())
			t.Logf("prometheus log:\n%s", out)
		}
	})

	client, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	prom := promv1.NewAPI(client)
	// Wait (at most 30 s) until the target has been scraped often enough for the range queries: 10
	// scrapes at 500 ms cover the 4 s window of the latency comparison.
	deadline := time.Now().Add(30 * time.Second)
	for {
		qctx, qcancel := context.WithTimeout(t.Context(), 2*time.Second)
		v, _, err := prom.Query(qctx, `count_over_time(up{job="lanes"}[30s])`, time.Now())
		qcancel()
		if vec, ok := v.(model.Vector); err == nil && ok && len(vec) == 1 && vec[0].Value >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape the target 10 times within 30 s (last: %v, %v)", v, err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	spec := &lanesv1alpha1.LaneAnalysisSpec{
		Lane: "mse-traffic", Interval: &metav1.Duration{Duration: time.Minute}, Count: 3,
		Traffic: lanesv1alpha1.TrafficRequirement{Query: `sum(lane_demo_requests_total{lane="{{ tag }}"})`, MinRequests: 100},
		Metrics: []lanesv1alpha1.Metric{
			{Name: "error-rate", Scope: lanesv1alpha1.ScopeMember, Threshold: &lanesv1alpha1.Threshold{Max: dec("0.05")},
				Query: `sum(lane_demo_requests_total{service="{{ service }}",lane="{{ subset }}",code="500"}) / sum(lane_demo_requests_total{service="{{ service }}",lane="{{ subset }}"})`},
			{Name: "latency", Scope: lanesv1alpha1.ScopeMember, Comparison: &lanesv1alpha1.Comparison{
				MannWhitney: &lanesv1alpha1.MannWhitney{Direction: lanesv1alpha1.DirectionIncrease, MinSamples: 8,
					Window: &metav1.Duration{Duration: 4 * time.Second}, Step: &metav1.Duration{Duration: 500 * time.Millisecond}}},
				Query: `max(lane_demo_latency_seconds{service="{{ service }}",lane="{{ subset }}"})`},
		},
	}
	lane := Lane{Namespace: "lanes-demo", Name: "mse-traffic", Tag: "gray", Header: "x-mse-tag", Hops: []Hop{
		{Service: "a", Workload: "a", Rollout: "rollout-a", Releasing: true},
		{Service: "c", Workload: "c", Rollout: "rollout-c", Releasing: true},
	}}

	t.Run("a slower canary fails against base", func(t *testing.T) {
		m, err := Measure(t.Context(), prom, spec, lane, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if m.Result != fail || !strings.Contains(m.Message, "metric latency at hop c (Rollout rollout-c): the lane's samples are higher than the base's") {
			t.Errorf("Measure = %s %q, want C's latency to fail", m.Result, m.Message)
		}
		if m.Requests != 200 {
			t.Errorf("counted %v lane requests, want 200", m.Requests)
		}
		if got := m.Metrics[0].Hops[0]; got.Value != "0.01" || got.Result != pass {
			t.Errorf("error rate at A %+v, want 0.01 and Passed", got)
		}
	})
	t.Run("a NaN is inconclusive", func(t *testing.T) {
		nan := *spec
		nan.Metrics = []lanesv1alpha1.Metric{spec.Metrics[0]}
		// C had no errors: its error count divided by itself is 0/0.
		nan.Metrics[0].Query = `sum(lane_demo_requests_total{service="{{ service }}",code="500"}) / sum(lane_demo_requests_total{service="{{ service }}",code="500"})`
		onlyC := lane
		onlyC.Hops = lane.Hops[1:]
		m, err := Measure(t.Context(), prom, &nan, onlyC, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if m.Result != inc || !strings.Contains(m.Message, "metric error-rate at hop c (Rollout rollout-c): the value is NaN") {
			t.Errorf("Measure = %s %q, want C's 0/0 inconclusive", m.Result, m.Message)
		}
	})
	t.Run("no lane traffic is inconclusive", func(t *testing.T) {
		quiet := *spec
		quiet.Traffic.Query = `sum(lane_demo_requests_total{lane="{{ tag }}",service="nobody"})`
		m, err := Measure(t.Context(), prom, &quiet, lane, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if m.Result != inc || !strings.Contains(m.Message, "returned no series") {
			t.Errorf("Measure = %s %q, want inconclusive for want of lane traffic", m.Result, m.Message)
		}
	})
	t.Run("an unreachable Prometheus is inconclusive", func(t *testing.T) {
		gone, err := api.NewClient(api.Config{Address: "http://" + freeLoopbackAddr(t)})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Measure(t.Context(), promv1.NewAPI(gone), spec, lane, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if m.Result != inc || !strings.Contains(m.Message, "lane requests could not be counted") {
			t.Errorf("Measure = %s %q, want inconclusive", m.Result, m.Message)
		}
	})
	t.Run("a query Prometheus refuses is inconclusive", func(t *testing.T) {
		bad := *spec
		bad.Traffic.Query = `sum(lane_demo_requests_total{lane="{{ tag }}"}`
		m, err := Measure(t.Context(), prom, &bad, lane, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if m.Result != inc || !strings.Contains(m.Message, "bad_data") {
			t.Errorf("Measure = %s %q, want inconclusive with Prometheus's refusal", m.Result, m.Message)
		}
	})
}
