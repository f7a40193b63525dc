package v1alpha1_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemavalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
)

// crdSchema is the generated CRD's schema as the API server uses it: the CRD validated as the
// API server validates a new CRD (structural schema, CEL rules compiled within their cost
// budget), then its defaulting, OpenAPI and CEL validators.
type crdSchema struct {
	structural *structuralschema.Structural
	validator  schemavalidation.SchemaValidator
	cel        *cel.Validator
}

func loadCRD(t *testing.T) crdSchema {
	t.Helper()
	raw, err := os.ReadFile("../../charts/lanes/crds/kruise-lanes.io_laneanalyses.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &v1); err != nil {
		t.Fatal(err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1)
	var crd apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &crd, nil); err != nil {
		t.Fatal(err)
	}
	if errs := crdvalidation.ValidateCustomResourceDefinition(t.Context(), &crd); len(errs) > 0 {
		t.Fatalf("the API server would refuse the CRD: %v", errs.ToAggregate())
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1alpha1" {
		t.Fatalf("versions %+v, want v1alpha1 alone", crd.Spec.Versions)
	}
	// The internal form holds a schema shared by every version in spec.validation.
	validation := crd.Spec.Validation
	if v := crd.Spec.Versions[0].Schema; v != nil {
		validation = v
	}
	if validation == nil {
		t.Fatal("the CRD has no schema")
	}
	props := validation.OpenAPIV3Schema
	ss, err := structuralschema.NewStructural(props)
	if err != nil {
		t.Fatal(err)
	}
	validator, _, err := schemavalidation.NewSchemaValidator(props)
	if err != nil {
		t.Fatal(err)
	}
	return crdSchema{structural: ss, validator: validator, cel: cel.NewValidator(ss, true, celconfig.PerCallLimit)}
}

// admit defaults obj as the API server does and returns it with the validation errors of a
// create (old nil) or an update.
func (s crdSchema) admit(t *testing.T, obj, old *lanesv1alpha1.LaneAnalysis) (map[string]any, field.ErrorList) {
	t.Helper()
	u := toMap(t, obj)
	structuraldefaulting.Default(u, s.structural)
	errs := schemavalidation.ValidateCustomResource(nil, u, s.validator)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, s.structural, u)...)
	var oldU any
	if old != nil {
		m := toMap(t, old)
		structuraldefaulting.Default(m, s.structural)
		oldU = m
	}
	celErrs, _ := s.cel.Validate(t.Context(), nil, s.structural, u, oldU, celconfig.RuntimeCELCostBudget)
	return u, append(errs, celErrs...)
}

func toMap(t *testing.T, obj *lanesv1alpha1.LaneAnalysis) map[string]any {
	t.Helper()
	obj = obj.DeepCopy()
	obj.APIVersion, obj.Kind = lanesv1alpha1.GroupVersion.String(), "LaneAnalysis"
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func dec(s string) *lanesv1alpha1.Decimal {
	d := lanesv1alpha1.Decimal(s)
	return &d
}

// minimal is the least a user writes: everything else comes from the CRD's defaults.
func minimal() *lanesv1alpha1.LaneAnalysis {
	return &lanesv1alpha1.LaneAnalysis{
		ObjectMeta: metav1.ObjectMeta{Name: "mse-traffic", Namespace: "lanes-demo"},
		Spec: lanesv1alpha1.LaneAnalysisSpec{
			Lane:       "mse-traffic",
			Prometheus: lanesv1alpha1.PrometheusSource{Address: "http://127.0.0.1:9090"},
			Traffic:    lanesv1alpha1.TrafficRequirement{Query: `sum(increase(r{lane="{{ tag }}"}[{{ interval }}]))`},
			Metrics: []lanesv1alpha1.Metric{
				{Name: "errors", Query: `e{service="{{ service }}"}`, Threshold: &lanesv1alpha1.Threshold{Max: dec("0.05")}},
				{Name: "latency", Query: `l{service="{{ service }}",lane="{{ subset }}"}`, Comparison: &lanesv1alpha1.Comparison{
					MannWhitney: &lanesv1alpha1.MannWhitney{}}},
			},
		},
	}
}

// TestCRDDefaults checks that a LaneAnalysis built in Go with only the required fields gets the
// documented defaults from the API server: the optional fields must be left out of its JSON, not
// sent as zero values (a zero duration would pass validation and never be defaulted).
func TestCRDDefaults(t *testing.T) {
	s := loadCRD(t)
	got, errs := s.admit(t, minimal(), nil)
	if len(errs) > 0 {
		t.Fatalf("refused: %v", errs.ToAggregate())
	}
	var back lanesv1alpha1.LaneAnalysis
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got, &back); err != nil {
		t.Fatal(err)
	}
	want := minimal().Spec
	want.Interval = &metav1.Duration{Duration: time.Minute}
	want.Prometheus.Timeout = &metav1.Duration{Duration: 10 * time.Second}
	want.Count, want.FailureLimit, want.InconclusiveLimit = 3, 0, ptr.To[int32](2)
	want.Traffic.MinRequests = 1
	want.OnFailure = lanesv1alpha1.FailureActionRollback
	want.Metrics[0].Scope = lanesv1alpha1.ScopeMember
	want.Metrics[1].Scope = lanesv1alpha1.ScopeMember
	want.Metrics[1].Comparison.BaseSubset = "base"
	want.Metrics[1].Comparison.MannWhitney = &lanesv1alpha1.MannWhitney{
		Confidence: "0.98", Direction: lanesv1alpha1.DirectionEither, MinSamples: 8,
		Window: &metav1.Duration{Duration: 5 * time.Minute}, Step: &metav1.Duration{Duration: 15 * time.Second},
	}
	if diff := cmp.Diff(want, back.Spec); diff != "" {
		t.Errorf("defaulted spec (-want +got):\n%s", diff)
	}
}

func TestCRDValidation(t *testing.T) {
	s := loadCRD(t)
	for name, c := range map[string]struct {
		mutate func(*lanesv1alpha1.LaneAnalysis)
		want   string // a fragment of the refusal; empty: admitted
	}{
		"minimal":                   {mutate: func(*lanesv1alpha1.LaneAnalysis) {}},
		"failure limit below count": {mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Count, a.Spec.FailureLimit = 3, 2 }},
		"failure limit at count": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Count, a.Spec.FailureLimit = 3, 3 },
			want:   "failureLimit must be smaller than count",
		},
		"threshold and comparison": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) {
				a.Spec.Metrics[0].Comparison = &lanesv1alpha1.Comparison{MaxRatio: dec("1.2")}
			},
			want: "exactly one of threshold and comparison",
		},
		"neither": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[0].Threshold = nil },
			want:   "exactly one of threshold and comparison",
		},
		"threshold without bounds": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[0].Threshold = &lanesv1alpha1.Threshold{} },
			want:   "a threshold needs min, max or both",
		},
		"comparison without a check": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[1].Comparison.MannWhitney = nil },
			want:   "a comparison needs a ratio bound",
		},
		"decimal not a number": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[0].Threshold.Max = dec("five percent") },
			want:   "spec.metrics[0].threshold.max",
		},
		"negative decimal": {mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[0].Threshold.Min = dec("-1.5e3") }},
		"lane not a name": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Lane = "MSE Traffic" },
			want:   "spec.lane",
		},
		"address without scheme": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Prometheus.Address = "127.0.0.1:9090" },
			want:   "spec.prometheus.address",
		},
		"address with a path": {mutate: func(a *lanesv1alpha1.LaneAnalysis) {
			a.Spec.Prometheus.Address = "https://prom.monitoring:9090/prometheus"
		}},
		"unknown scope": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[0].Scope = "Pod" },
			want:   "spec.metrics[0].scope",
		},
		"unknown failure action": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.OnFailure = "Ignore" },
			want:   "spec.onFailure",
		},
		"metric name not a label": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[0].Name = "Error_Rate" },
			want:   "spec.metrics[0].name",
		},
		"duplicate metric names": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[1].Name = a.Spec.Metrics[0].Name },
			want:   "Duplicate value",
		},
		"no metrics": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics = nil },
			want:   "spec.metrics",
		},
		"min samples below 3": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) { a.Spec.Metrics[1].Comparison.MannWhitney.MinSamples = 2 },
			want:   "minSamples",
		},
		"bearer token key": {
			mutate: func(a *lanesv1alpha1.LaneAnalysis) {
				a.Spec.Prometheus.BearerTokenSecretRef = &lanesv1alpha1.SecretKeyRef{Name: "prom", Key: "bad/key"}
			},
			want: "bearerTokenSecretRef.key",
		},
	} {
		t.Run(name, func(t *testing.T) {
			a := minimal()
			c.mutate(a)
			_, errs := s.admit(t, a, nil)
			got := errs.ToAggregate()
			switch {
			case c.want == "" && got != nil:
				t.Errorf("refused: %v", got)
			case c.want != "" && got == nil:
				t.Errorf("admitted, want a refusal containing %q", c.want)
			case c.want != "" && !strings.Contains(got.Error(), c.want):
				t.Errorf("refused with %v, want %q", got, c.want)
			}
		})
	}
}

func TestCRDLaneIsImmutable(t *testing.T) {
	s := loadCRD(t)
	old := minimal()
	moved := minimal()
	moved.Spec.Lane = "another-lane"
	if _, errs := s.admit(t, moved, old); !strings.Contains(errs.ToAggregate().Error(), "lane is immutable") {
		t.Errorf("moving the lane: %v, want it refused as immutable", errs.ToAggregate())
	}
	strict := minimal()
	strict.Spec.InconclusiveLimit = ptr.To[int32](0)
	got, errs := s.admit(t, strict, nil)
	if len(errs) > 0 {
		t.Fatalf("refused: %v", errs.ToAggregate())
	}
	if limit := got["spec"].(map[string]any)["inconclusiveLimit"]; limit != int64(0) {
		t.Errorf("an explicit inconclusiveLimit 0 became %v", limit)
	}
	tuned := minimal()
	tuned.Spec.Count = 5
	if _, errs := s.admit(t, tuned, old); len(errs) > 0 {
		t.Errorf("changing the count: %v, want it admitted", errs.ToAggregate())
	}
}
