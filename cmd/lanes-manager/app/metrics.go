package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kruise-lanes/kruise-lanes/webhook"
)

// metrics are lanes-manager's Prometheus series.
type metrics struct {
	admissions      *prometheus.CounterVec
	labelsApplied   prometheus.Counter
	labelsRemoved   prometheus.Counter
	reconcileErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanes_pod_admissions_total", Help: "Pod admissions by outcome (labelled, unchanged, misconfigured, error).",
		}, []string{"outcome"}),
		labelsApplied:   prometheus.NewCounter(prometheus.CounterOpts{Name: "lanes_pod_labels_applied_total", Help: "Lane labels set on pods, by the webhook or the reconciler."}),
		labelsRemoved:   prometheus.NewCounter(prometheus.CounterOpts{Name: "lanes_pod_labels_removed_total", Help: "Lane labels removed from pods."}),
		reconcileErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "lanes_reconcile_errors_total", Help: "Failed lane label reconciles."}),
	}
	for _, c := range []prometheus.Collector{m.admissions, m.labelsApplied, m.labelsRemoved, m.reconcileErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) Admission(o webhook.Outcome) { m.admissions.WithLabelValues(string(o)).Inc() }
func (m *metrics) LabelsApplied(n int)         { m.labelsApplied.Add(float64(n)) }
func (m *metrics) LabelsRemoved(n int)         { m.labelsRemoved.Add(float64(n)) }
func (m *metrics) ReconcileError()             { m.reconcileErrors.Inc() }
