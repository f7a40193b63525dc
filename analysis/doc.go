// Package analysis decides a lane analysis's verdicts from Prometheus answers, with no access to
// the API server: it renders a metric's PromQL template for the lane and each hop, queries through
// the small Querier interface (which the Prometheus client's v1 API satisfies), judges each value
// against a threshold or the base's value and a Mann-Whitney U test, and counts measurements
// against the spec's limits. Missing data (no lane traffic, a query error, an unreachable
// Prometheus, an empty answer, NaN, too few samples) is always inconclusive, never a pass.
package analysis
