package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LaneAnalysis judges a lane (a Kruise TrafficRouting and its member Rollouts) by Prometheus
// measurements of the lane's own traffic at every hop. While the lane's releasing members are
// paused at a step it measures every interval; when every metric has passed the required number of
// times it approves all paused members, and when the lane fails it rolls the whole lane back (or
// pauses and warns). Missing data is never a pass: no lane traffic, a query error, an unreachable
// Prometheus or a NaN makes a measurement inconclusive.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=lana,categories=kruise-lanes
// +kubebuilder:printcolumn:name="Lane",type=string,JSONPath=`.spec.lane`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Step",type=integer,JSONPath=`.status.currentStep`
// +kubebuilder:printcolumn:name="Measurement",type=integer,JSONPath=`.status.currentMeasurement`
// +kubebuilder:printcolumn:name="Verdict",type=string,JSONPath=`.status.verdict.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LaneAnalysis struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which lane is judged, where its measurements come from and how they are judged.
	// +required
	Spec LaneAnalysisSpec `json:"spec"`
	// Status is what the analysis has measured and decided so far; the controller resumes from it.
	// +optional
	Status LaneAnalysisStatus `json:"status,omitempty"`
}

// LaneAnalysisList is a list of LaneAnalysis.
//
// +kubebuilder:object:root=true
type LaneAnalysisList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LaneAnalysis `json:"items"`
}

// LaneAnalysisSpec is the desired analysis of one lane.
//
// +kubebuilder:validation:XValidation:rule="self.failureLimit < self.count",message="failureLimit must be smaller than count: with failureLimit >= count no measurement could ever fail the lane"
type LaneAnalysisSpec struct {
	// Lane is the name of the lane: a TrafficRouting (rollouts.kruise.io/v1alpha1) in the
	// LaneAnalysis's own namespace. Its members are the Rollouts annotated
	// rollouts.kruise.io/trafficrouting: <lane>.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="lane is immutable: create another LaneAnalysis for another lane"
	Lane string `json:"lane"`

	// Prometheus is the server the metrics are queried from.
	// +required
	Prometheus PrometheusSource `json:"prometheus"`

	// Interval is the time between two measurements, and the value of the {{ interval }} variable
	// (rate windows). At least 1s.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Count is the number of passed measurements a step needs before the lane's paused members
	// are approved.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Count int32 `json:"count,omitempty"`

	// FailureLimit is the number of failed measurements a step tolerates: one more fails the lane.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=99
	FailureLimit int32 `json:"failureLimit,omitempty"`

	// InconclusiveLimit is the number of inconclusive measurements a step tolerates: one more ends
	// the step's analysis as inconclusive, and the lane stays paused with a Warning Event, nothing
	// approved and nothing rolled back. A pointer, so that an explicit 0 is kept and an unset
	// value gets the default.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	InconclusiveLimit *int32 `json:"inconclusiveLimit,omitempty"`

	// Traffic says how much lane traffic a measurement needs to count.
	// +required
	Traffic TrafficRequirement `json:"traffic"`

	// Metrics are the measurements of every analysis step. A measurement passes when every
	// metric passes at every hop it covers.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	Metrics []Metric `json:"metrics"`

	// OnFailure is what a failed lane gets: Rollback rolls every member of the lane back to its
	// stable version (as `kubectl lanes rollback`); PauseAndWarn leaves the lane paused with a
	// Warning Event for a person to decide.
	// +optional
	// +kubebuilder:default=Rollback
	OnFailure FailureAction `json:"onFailure,omitempty"`
}

// FailureAction is what a failed lane gets.
//
// +kubebuilder:validation:Enum=Rollback;PauseAndWarn
type FailureAction string

// The failure actions.
const (
	// FailureActionRollback rolls the whole lane back.
	FailureActionRollback FailureAction = "Rollback"
	// FailureActionPauseAndWarn leaves the lane paused and emits a Warning Event.
	FailureActionPauseAndWarn FailureAction = "PauseAndWarn"
)

// PrometheusSource is a Prometheus server (or anything serving its HTTP query API).
type PrometheusSource struct {
	// Address is the server's base URL, http or https, without the /api/v1 path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s/?#]+(/[^\s?#]*)?$`
	Address string `json:"address"`

	// BearerTokenSecretRef names a key of a Secret in the LaneAnalysis's namespace whose value is
	// sent as a bearer token with every query. Unset: no Authorization header.
	// +optional
	BearerTokenSecretRef *SecretKeyRef `json:"bearerTokenSecretRef,omitempty"`

	// Timeout bounds each query; a query that takes longer makes the measurement inconclusive.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// SecretKeyRef is one key of a Secret in the referring object's namespace.
type SecretKeyRef struct {
	// Name is the Secret's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key is the key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// TrafficRequirement is the lane traffic a measurement needs to count: with less, the measurement
// is inconclusive, never a pass.
type TrafficRequirement struct {
	// Query is a PromQL template whose result is the number of lane requests in the last
	// interval, lane-wide (a single sample; hop variables are not allowed), for example
	// sum(increase(lane_demo_requests_total{lane="{{ tag }}"}[{{ interval }}])).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query"`

	// MinRequests is the least number of lane requests a measurement needs.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	MinRequests int64 `json:"minRequests,omitempty"`
}

// Metric is one measured quantity, judged either against a threshold or lane against base.
//
// +kubebuilder:validation:XValidation:rule="has(self.threshold) != has(self.comparison)",message="a metric has exactly one of threshold and comparison"
type Metric struct {
	// Name identifies the metric in status, Events and verdicts.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Query is a PromQL template that evaluates to a single sample. Variables are written
	// {{ name }}: namespace, lane, tag, header, interval, subset, and, unless the scope is Lane,
	// service, workload and rollout. Any other {{ ... }} is refused.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query"`

	// Scope says where the query is evaluated: Member once per releasing member Rollout, Hop once
	// per member of the lane (releasing or not: a hop without a canary still serves lane traffic
	// on its base), Lane once for the whole lane.
	// +optional
	// +kubebuilder:default=Member
	Scope Scope `json:"scope,omitempty"`

	// Threshold judges the query's value against fixed bounds.
	// +optional
	Threshold *Threshold `json:"threshold,omitempty"`

	// Comparison judges lane traffic against base traffic of the same hop.
	// +optional
	Comparison *Comparison `json:"comparison,omitempty"`
}

// Scope is where a metric is evaluated.
//
// +kubebuilder:validation:Enum=Member;Hop;Lane
type Scope string

// The scopes.
const (
	// ScopeMember evaluates a metric once per releasing member Rollout.
	ScopeMember Scope = "Member"
	// ScopeHop evaluates a metric once per member of the lane, releasing or not.
	ScopeHop Scope = "Hop"
	// ScopeLane evaluates a metric once for the whole lane.
	ScopeLane Scope = "Lane"
)

// Decimal is a decimal number written as a string ("0.99", "-1", "2.5e-3"): CRDs do not carry
// floating-point fields.
//
// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`
// +kubebuilder:validation:MaxLength=32
type Decimal string

// Threshold bounds a value: it passes when min <= value <= max (either bound may be omitted).
//
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="a threshold needs min, max or both"
type Threshold struct {
	// Min is the smallest passing value.
	// +optional
	Min *Decimal `json:"min,omitempty"`
	// Max is the largest passing value.
	// +optional
	Max *Decimal `json:"max,omitempty"`
}

// Comparison judges the same query for lane traffic ({{ subset }} = the lane's tag) and for base
// traffic ({{ subset }} = BaseSubset) of the same hop: by bounds on the ratio lane/base or the
// difference lane-base of their current values, and by a Mann-Whitney U test over the samples of
// the last window (a query_range).
//
// +kubebuilder:validation:XValidation:rule="has(self.maxRatio) || has(self.minRatio) || has(self.maxDifference) || has(self.minDifference) || has(self.mannWhitney)",message="a comparison needs a ratio bound, a difference bound or mannWhitney"
type Comparison struct {
	// BaseSubset is the value of {{ subset }} in the base query.
	// +optional
	// +kubebuilder:default=base
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	BaseSubset string `json:"baseSubset,omitempty"`

	// MaxRatio fails the hop when lane/base is larger (e.g. "1.2" for a latency).
	// +optional
	MaxRatio *Decimal `json:"maxRatio,omitempty"`
	// MinRatio fails the hop when lane/base is smaller (e.g. "0.98" for a success rate).
	// +optional
	MinRatio *Decimal `json:"minRatio,omitempty"`
	// MaxDifference fails the hop when lane-base is larger.
	// +optional
	MaxDifference *Decimal `json:"maxDifference,omitempty"`
	// MinDifference fails the hop when lane-base is smaller.
	// +optional
	MinDifference *Decimal `json:"minDifference,omitempty"`

	// MannWhitney adds a Mann-Whitney U test of the lane's samples against the base's over the
	// last window.
	// +optional
	MannWhitney *MannWhitney `json:"mannWhitney,omitempty"`
}

// MannWhitney is a two-sided Mann-Whitney U test of lane samples against base samples: the hop
// fails when the two differ at the confidence level in the direction that counts as worse.
type MannWhitney struct {
	// Confidence is the confidence level, between 0.5 and 0.9999: the hop fails when the test's
	// p-value is below 1 - confidence.
	// +optional
	// +kubebuilder:default="0.98"
	Confidence Decimal `json:"confidence,omitempty"`

	// Direction is the change of the lane against the base that fails: Increase (latency, errors),
	// Decrease (success rate, throughput) or Either.
	// +optional
	// +kubebuilder:default=Either
	Direction Direction `json:"direction,omitempty"`

	// Window is how far back the samples reach.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	Window *metav1.Duration `json:"window,omitempty"`

	// Step is the query_range resolution: window/step samples per side.
	// +optional
	// +kubebuilder:default="15s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	Step *metav1.Duration `json:"step,omitempty"`

	// MinSamples is the least number of samples per side; with fewer the hop is inconclusive.
	// With 4 a side the smallest possible p-value is 2/70, so at confidence 0.98 no difference
	// could be shown.
	// +optional
	// +kubebuilder:default=8
	// +kubebuilder:validation:Minimum=3
	// +kubebuilder:validation:Maximum=11000
	MinSamples int32 `json:"minSamples,omitempty"`
}

// Direction is the change of a lane against its base that counts as worse.
//
// +kubebuilder:validation:Enum=Increase;Decrease;Either
type Direction string

// The directions.
const (
	// DirectionIncrease fails a lane whose values are higher than the base's.
	DirectionIncrease Direction = "Increase"
	// DirectionDecrease fails a lane whose values are lower than the base's.
	DirectionDecrease Direction = "Decrease"
	// DirectionEither fails a lane whose values differ from the base's either way.
	DirectionEither Direction = "Either"
)
