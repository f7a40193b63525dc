//go:build e2e

package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// reconcileMetrics is what lanes-manager's metrics endpoint says about one controller.
type reconcileMetrics struct {
	// reconciles and seconds are controller_runtime_reconcile_time_seconds' count and sum.
	reconciles uint64
	seconds    float64
	// busy is the controller's queued plus in-flight items (workqueue_depth and
	// controller_runtime_active_workers).
	busy float64
}

// scrapeController reads one controller's reconcile figures from a controller-runtime metrics
// endpoint.
func scrapeController(ctx context.Context, hc *http.Client, port int, controller string) (reconcileMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), http.NoBody)
	if err != nil {
		return reconcileMetrics{}, fmt.Errorf("build metrics request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return reconcileMetrics{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return reconcileMetrics{}, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return reconcileMetrics{}, fmt.Errorf("parse metrics: %w", err)
	}
	var m reconcileMetrics
	found := false
	for _, s := range samplesOf(families["controller_runtime_reconcile_time_seconds"], controller) {
		m.reconciles += s.GetHistogram().GetSampleCount()
		m.seconds += s.GetHistogram().GetSampleSum()
		found = true
	}
	if !found {
		return reconcileMetrics{}, fmt.Errorf("no controller %q in the metrics (is it running?)", controller)
	}
	for _, s := range samplesOf(families["workqueue_depth"], controller) {
		m.busy += s.GetGauge().GetValue()
	}
	for _, s := range samplesOf(families["controller_runtime_active_workers"], controller) {
		m.busy += s.GetGauge().GetValue()
	}
	return m, nil
}

// samplesOf returns the samples of a family labelled controller=<controller>.
func samplesOf(f *dto.MetricFamily, controller string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "controller" && l.GetValue() == controller {
				out = append(out, m)
			}
		}
	}
	return out
}

// Settling: the controller counts as idle once nothing is queued or in flight and no reconcile
// ended over settlePolls polls settlePoll apart.
const (
	settlePoll  = 50 * time.Millisecond
	settlePolls = 6
)

// waitIdle waits until the controller is idle (see settlePolls), at most timeout.
func waitIdle(ctx context.Context, hc *http.Client, port int, controller string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	quiet, last := 0, uint64(0)
	for {
		m, err := scrapeController(ctx, hc, port, controller)
		if err != nil {
			return err
		}
		if m.busy == 0 && m.reconciles == last {
			quiet++
		} else {
			quiet = 0
		}
		last = m.reconciles
		if quiet >= settlePolls {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("controller %s still busy after %s (queued+active %v)", controller, timeout, m.busy)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settlePoll):
		}
	}
}
