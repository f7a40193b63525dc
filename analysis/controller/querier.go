package controller

import (
	"context"
	"fmt"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/kruise-lanes/kruise-lanes/analysis"
	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// QuerierFactory builds the Querier of a Prometheus source; token is the bearer token ("" for
// none).
type QuerierFactory func(src lanesv1alpha1.PrometheusSource, token string) (analysis.Querier, error)

// NewPrometheusQuerier is the QuerierFactory of the real Prometheus client: every query is bounded
// by the source's timeout, and a token is sent as a bearer token.
func NewPrometheusQuerier(src lanesv1alpha1.PrometheusSource, token string) (analysis.Querier, error) {
	rt := promapi.DefaultRoundTripper
	if token != "" {
		rt = promconfig.NewAuthorizationCredentialsRoundTripper("Bearer", promconfig.NewInlineSecret(token), rt)
	}
	c, err := promapi.NewClient(promapi.Config{Address: src.Address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", src.Address, err)
	}
	timeout := 10 * time.Second
	if src.Timeout != nil && src.Timeout.Duration > 0 {
		timeout = src.Timeout.Duration
	}
	return timeoutQuerier{q: promv1.NewAPI(c), timeout: timeout}, nil
}

// timeoutQuerier bounds every query of q by timeout.
type timeoutQuerier struct {
	q       analysis.Querier
	timeout time.Duration
}

func (t timeoutQuerier) Query(ctx context.Context, query string, ts time.Time, opts ...promv1.Option) (model.Value, promv1.Warnings, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.q.Query(ctx, query, ts, opts...)
}

func (t timeoutQuerier) QueryRange(ctx context.Context, query string, r promv1.Range, opts ...promv1.Option) (model.Value, promv1.Warnings, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.q.QueryRange(ctx, query, r, opts...)
}
