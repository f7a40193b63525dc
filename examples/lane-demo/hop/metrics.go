package hop

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	RequestsMetric = "lane_demo_requests_total"
	DurationMetric = "lane_demo_request_duration_seconds"
)

// metrics counts a hop's answers in a registry of its own. service and version are constant
// labels; lane is the request's lane and code the HTTP status code, for gRPC the HTTP code of
// the same answer, so both protocols count alike.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(service, version string) (*metrics, error) {
	constLabels := prometheus.Labels{"service": service, "version": version}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        RequestsMetric,
			Help:        "Requests answered by this hop, per request lane and HTTP status code.",
			ConstLabels: constLabels,
		}, []string{"lane", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        DurationMetric,
			Help:        "Time this hop took to answer, downstream call included, per request lane.",
			ConstLabels: constLabels,
			Buckets:     prometheus.DefBuckets,
		}, []string{"lane"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := m.registry.Register(c); err != nil {
			return nil, fmt.Errorf("register the metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one answer. lane is printable ASCII (see collectHeaders), so the label values
// are valid and WithLabelValues cannot panic.
func (m *metrics) observe(lane string, code int, took time.Duration) {
	m.requests.WithLabelValues(lane, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(lane).Observe(took.Seconds())
}
