//go:build tools

// Package tools pins the Prometheus server the analysis e2e scenarios query.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
