package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxHistory is the number of measurements status.history keeps; older ones are dropped first.
const MaxHistory = 20

// LaneAnalysisStatus is what the analysis has measured and decided. The controller keeps its
// whole state here, so a restart or a leader failover resumes where it was.
type LaneAnalysisStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready (the spec, lane and Prometheus are usable), Measuring (a step is being
	// measured) and Completed (the current step has a verdict).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Phase sums the analysis up.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// CurrentStep is the Kruise canary step (1-based) the lane's releasing members are paused at
	// and the analysis measures; 0 before the first.
	// +optional
	CurrentStep int32 `json:"currentStep,omitempty"`

	// CurrentMeasurement is the number of measurements taken in the current step.
	// +optional
	CurrentMeasurement int32 `json:"currentMeasurement,omitempty"`

	// Passed, Failed and Inconclusive count the current step's measurements by verdict.
	// +optional
	Passed int32 `json:"passed,omitempty"`
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// +optional
	Inconclusive int32 `json:"inconclusive,omitempty"`

	// LastMeasurementTime is when the last measurement was taken; the next is due an interval
	// later.
	// +optional
	LastMeasurementTime *metav1.Time `json:"lastMeasurementTime,omitempty"`

	// Metrics are each metric's values and verdict in the last measurement.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Metrics []MetricStatus `json:"metrics,omitempty"`

	// Verdict is the current step's final verdict, once it has one.
	// +optional
	Verdict *Verdict `json:"verdict,omitempty"`

	// History holds the last measurements, newest last, at most MaxHistory (20).
	// +optional
	// +kubebuilder:validation:MaxItems=20
	History []MeasurementRecord `json:"history,omitempty"`
}

// Phase is the state of an analysis.
//
// +kubebuilder:validation:Enum=Pending;Measuring;Passed;Failed;Inconclusive;Error
type Phase string

// The phases.
const (
	// PhasePending: the lane has no member paused at a step; nothing is measured.
	PhasePending Phase = "Pending"
	// PhaseMeasuring: the current step is being measured.
	PhaseMeasuring Phase = "Measuring"
	// PhasePassed: the current step passed and its paused members were approved.
	PhasePassed Phase = "Passed"
	// PhaseFailed: the lane failed; it was rolled back or paused with a warning (spec.onFailure).
	PhaseFailed Phase = "Failed"
	// PhaseInconclusive: too many inconclusive measurements; the lane stays paused.
	PhaseInconclusive Phase = "Inconclusive"
	// PhaseError: the spec cannot be measured (a bad template, a missing lane or Secret).
	PhaseError Phase = "Error"
)

// Result is the verdict of one hop, one metric, one measurement or a step.
//
// +kubebuilder:validation:Enum=Passed;Failed;Inconclusive
type Result string

// The results.
const (
	// ResultPassed: within bounds.
	ResultPassed Result = "Passed"
	// ResultFailed: out of bounds.
	ResultFailed Result = "Failed"
	// ResultInconclusive: not enough data to judge (no traffic, a query error, NaN, too few
	// samples); never counted as a pass.
	ResultInconclusive Result = "Inconclusive"
)

// MetricStatus is one metric's outcome in the last measurement.
type MetricStatus struct {
	// Name is the metric's name in spec.metrics.
	// +required
	Name string `json:"name"`
	// Result is the metric's verdict: Failed if any hop failed, else Inconclusive if any hop was,
	// else Passed.
	// +required
	Result Result `json:"result"`
	// Hops are the metric's values at each hop it covers (one entry, hop empty, for scope Lane).
	// +optional
	// +kubebuilder:validation:MaxItems=100
	Hops []HopValue `json:"hops,omitempty"`
}

// HopValue is a metric's value and verdict at one hop.
type HopValue struct {
	// Service is the hop's Service; empty for a lane-wide metric.
	// +optional
	Service string `json:"service,omitempty"`
	// Rollout is the hop's member Rollout; empty for a lane-wide metric.
	// +optional
	Rollout string `json:"rollout,omitempty"`
	// Value is the query's value for lane traffic, as a decimal string ("NaN" when it was not a
	// number, empty when there was none).
	// +optional
	Value string `json:"value,omitempty"`
	// BaseValue is the query's value for base traffic (comparisons only).
	// +optional
	BaseValue string `json:"baseValue,omitempty"`
	// PValue is the Mann-Whitney test's p-value (comparisons with mannWhitney only).
	// +optional
	PValue string `json:"pValue,omitempty"`
	// Result is the hop's verdict.
	// +required
	Result Result `json:"result"`
	// Message says why, in one sentence.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// Verdict is the final verdict of a step.
type Verdict struct {
	// Result is the step's outcome.
	// +required
	Result Result `json:"result"`
	// Message is one sentence naming, for a failure, the failing metric and hop.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
	// Time is when the verdict was reached.
	// +required
	Time metav1.Time `json:"time"`
}

// MeasurementRecord is one past measurement.
type MeasurementRecord struct {
	// Step is the canary step measured.
	// +required
	Step int32 `json:"step"`
	// Measurement is the measurement's number within its step (1-based).
	// +required
	Measurement int32 `json:"measurement"`
	// Time is when it was taken.
	// +required
	Time metav1.Time `json:"time"`
	// Result is its verdict.
	// +required
	Result Result `json:"result"`
	// Message says why, in one sentence.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}
