package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// Metrics are the series of the analysis itself.
type Metrics struct {
	measurements *prometheus.CounterVec
	verdicts     *prometheus.CounterVec
}

// NewMetrics registers the analysis series with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		measurements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanes_analysis_measurements_total", Help: "Lane analysis measurements by result (Passed, Failed, Inconclusive).",
		}, []string{"result"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanes_analysis_verdicts_total", Help: "Lane analysis step verdicts by result (Passed, Failed, Inconclusive).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.measurements, m.verdicts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) measurement(r lanesv1alpha1.Result) {
	if m != nil {
		m.measurements.WithLabelValues(string(r)).Inc()
	}
}

func (m *Metrics) verdict(r lanesv1alpha1.Result) {
	if m != nil {
		m.verdicts.WithLabelValues(string(r)).Inc()
	}
}
