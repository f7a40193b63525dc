package controller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kruise-lanes/kruise-lanes/analysis"
	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

const ns = "shop"

// fakeQuerier answers every query with value(query); an error answer is a query error.
type fakeQuerier struct {
	value   func(query string) (float64, error)
	queries []string
}

func (f *fakeQuerier) Query(_ context.Context, query string, ts time.Time, _ ...promv1.Option) (model.Value, promv1.Warnings, error) {
	f.queries = append(f.queries, query)
	v, err := f.value(query)
	if err != nil {
		return nil, nil, err
	}
	return model.Vector{{Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil
}

func (f *fakeQuerier) QueryRange(context.Context, string, promv1.Range, ...promv1.Option) (model.Value, promv1.Warnings, error) {
	return nil, nil, errors.New("no range queries in these tests")
}

var serviceOfQuery = regexp.MustCompile(`service="([^"]*)"`)

// errorRatios answers the traffic query with 100 requests and the error ratio query with the
// ratio of the hop's service.
func errorRatios(ratios map[string]float64) func(string) (float64, error) {
	return func(q string) (float64, error) {
		if strings.HasPrefix(q, "sum(increase(") {
			return 100, nil
		}
		m := serviceOfQuery.FindStringSubmatch(q)
		if m == nil {
			return 0, fmt.Errorf("unexpected query %s", q)
		}
		return ratios[m[1]], nil
	}
}

func spec() lanesv1alpha1.LaneAnalysisSpec {
	return lanesv1alpha1.LaneAnalysisSpec{
		Lane:              "lane",
		Prometheus:        lanesv1alpha1.PrometheusSource{Address: "http://prometheus:9090"},
		Interval:          &metav1.Duration{Duration: 10 * time.Second},
		Count:             2,
		FailureLimit:      0,
		InconclusiveLimit: ptr.To[int32](1),
		Traffic:           lanesv1alpha1.TrafficRequirement{Query: `sum(increase(requests{lane="{{ tag }}"}[{{ interval }}]))`, MinRequests: 10},
		Metrics: []lanesv1alpha1.Metric{{
			Name:      "error-ratio",
			Query:     `errors{service="{{ service }}",lane="{{ tag }}"}`,
			Scope:     lanesv1alpha1.ScopeHop,
			Threshold: &lanesv1alpha1.Threshold{Max: ptr.To(lanesv1alpha1.Decimal("0.05"))},
		}},
		OnFailure: lanesv1alpha1.FailureActionRollback,
	}
}

// member returns the Service, Deployment, stable ReplicaSet and Rollout of hop name; a releasing
// member is paused at step 1 with canary revision "new" over stable revision "old".
func member(name string, releasing bool) []client.Object {
	lbl := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(name)},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: name + ":v2"}}},
		}},
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-old", Labels: map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "old", "app": name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: types.UID(name), Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, appsv1.DefaultDeploymentUniqueLabelKey: "old"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: name + ":v1"}}},
		}},
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "svc-" + name}, Spec: corev1.ServiceSpec{Selector: lbl}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: lbl}}
	ro := &rolloutsv1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rollout-" + name, Annotations: map[string]string{trafficrouting.TrafficRoutingAnnotation: "lane"}},
		Spec: rolloutsv1beta1.RolloutSpec{
			WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Strategy:    rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{Steps: []rolloutsv1beta1.CanaryStep{{}, {}}}},
		},
		Status: rolloutsv1beta1.RolloutStatus{Phase: rolloutsv1beta1.RolloutPhaseHealthy},
	}
	if releasing {
		ro.Status.Phase = rolloutsv1beta1.RolloutPhaseProgressing
		ro.Status.CanaryStatus = &rolloutsv1beta1.CanaryStatus{CommonStatus: rolloutsv1beta1.CommonStatus{
			CurrentStepIndex: 1, CurrentStepState: rolloutsv1beta1.CanaryStepStatePaused, StableRevision: "old", PodTemplateHash: "new",
		}}
	}
	return []client.Object{d, rs, svc, pod, ro}
}

// env is a lane A -> B -> C with A and C releasing, and what the reconciler did to it.
type env struct {
	r         *Reconciler
	c         client.Client
	q         *fakeQuerier
	events    *record.FakeRecorder
	now       time.Time
	approved  []string // Rollouts an approval was sent to
	patched   []string // workloads whose template was replaced
	recorded  []string // every Event
	noQuerier bool
}

func newEnv(t *testing.T, s lanesv1alpha1.LaneAnalysisSpec, q *fakeQuerier, status *lanesv1alpha1.LaneAnalysisStatus) *env {
	t.Helper()
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := lanesv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	tr := &rolloutsv1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lane", Annotations: map[string]string{trafficrouting.AnnotationTag: "gray"}}}
	la := &lanesv1alpha1.LaneAnalysis{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lane", Generation: 1}, Spec: s}
	if status != nil {
		la.Status = *status
	}
	objs := []client.Object{tr, la}
	objs = append(objs, member("a", true)...)
	objs = append(objs, member("b", false)...)
	objs = append(objs, member("c", true)...)
	e := &env{q: q, events: record.NewFakeRecorder(100), now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	// The API server holds the whole objects; the reconciler's client reads them as lanes-manager's
	// cache holds them (no pod templates), so a rollback must read its template from the API.
	api := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	trimmed := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		kept, err := trafficrouting.CacheTransform(o.DeepCopyObject())
		if err != nil {
			t.Fatal(err)
		}
		trimmed = append(trimmed, kept.(client.Object))
	}
	e.c = fake.NewClientBuilder().WithScheme(scheme).WithObjects(trimmed...).WithStatusSubresource(&lanesv1alpha1.LaneAnalysis{}, &rolloutsv1beta1.Rollout{}).
		WithInterceptorFuncs(interceptor.Funcs{
			// Kruise's side of an approval: the Rollout moves on to the next step.
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				ro, ok := obj.(*rolloutsv1beta1.Rollout)
				if !ok {
					return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
				}
				e.approved = append(e.approved, ro.Name)
				cur := &rolloutsv1beta1.Rollout{}
				if err := c.Get(ctx, client.ObjectKeyFromObject(ro), cur); err != nil {
					return err
				}
				cur.Status.CanaryStatus.CurrentStepIndex++
				cur.Status.CanaryStatus.CurrentStepState = rolloutsv1beta1.CanaryStepStateUpgrade
				return c.Status().Update(ctx, cur)
			},
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				if _, ok := obj.(*appsv1.Deployment); ok {
					e.patched = append(e.patched, obj.GetName())
				}
				return c.Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	e.r = &Reconciler{Client: e.c, APIReader: api, Recorder: e.events,
		Defaults: trafficrouting.Defaults{LaneHeader: "x-mse-tag", Dialects: []trafficrouting.Dialect{trafficrouting.DialectMSE}},
		NewQuerier: func(lanesv1alpha1.PrometheusSource, string) (analysis.Querier, error) {
			if e.noQuerier {
				return nil, errors.New("no querier may be built")
			}
			return q, nil
		},
		Now: func() time.Time { return e.now },
	}
	return e
}

// run reconciles n times, moving the clock on by the requeue delay (at least a second) in
// between, as the controller's queue would.
func (e *env) run(t *testing.T, n int) {
	t.Helper()
	for range n {
		res, err := e.r.Reconcile(t.Context(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "lane"}})
		if err != nil {
			t.Fatalf("reconcile: %v", err)
		}
		e.now = e.now.Add(max(res.RequeueAfter, time.Second))
	}
	for {
		select {
		case ev := <-e.events.Events:
			e.recorded = append(e.recorded, ev)
		default:
			return
		}
	}
}

func (e *env) analysis(t *testing.T) *lanesv1alpha1.LaneAnalysis {
	t.Helper()
	la := &lanesv1alpha1.LaneAnalysis{}
	if err := e.c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "lane"}, la); err != nil {
		t.Fatal(err)
	}
	return la
}

func (e *env) hasEvent(prefix, substr string) bool {
	for _, ev := range e.recorded {
		if strings.HasPrefix(ev, prefix) && strings.Contains(ev, substr) {
			return true
		}
	}
	return false
}

func TestHealthyLaneIsApprovedWhole(t *testing.T) {
	q := &fakeQuerier{value: errorRatios(map[string]float64{"svc-a": 0.01, "svc-b": 0, "svc-c": 0.02})}
	e := newEnv(t, spec(), q, nil)
	e.run(t, 6)
	la := e.analysis(t)
	if la.Status.Phase != lanesv1alpha1.PhasePassed || la.Status.Verdict == nil || la.Status.Verdict.Result != lanesv1alpha1.ResultPassed {
		t.Fatalf("phase %s, verdict %+v; want Passed (events %q)", la.Status.Phase, la.Status.Verdict, e.recorded)
	}
	if got := strings.Join(e.approved, ","); got != "rollout-a,rollout-c" {
		t.Errorf("approved %q, want both releasing members rollout-a,rollout-c (and not rollout-b)", got)
	}
	if c := meta.FindStatusCondition(la.Status.Conditions, ConditionCompleted); c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonApproved {
		t.Errorf("Completed condition %+v, want True/Approved", c)
	}
	if la.Status.Passed != 2 || la.Status.CurrentMeasurement != 2 || len(la.Status.History) != 2 {
		t.Errorf("passed %d, measurements %d, history %d; want 2, 2, 2", la.Status.Passed, la.Status.CurrentMeasurement, len(la.Status.History))
	}
	if len(e.patched) != 0 {
		t.Errorf("workloads patched %v, want none", e.patched)
	}
	// The hop's Service is the one selecting its pods, and every hop is measured.
	for _, svc := range []string{"svc-a", "svc-b", "svc-c"} {
		if !strings.Contains(strings.Join(q.queries, "\n"), `service="`+svc+`"`) {
			t.Errorf("no query for hop %s in %q", svc, q.queries)
		}
	}
	if !e.hasEvent("Normal VerdictPassed", "The lane passed") || !e.hasEvent("Normal Approved", "rollout-a, rollout-c") {
		t.Errorf("events %q lack the verdict and the approval", e.recorded)
	}
}

func TestFailingHopRollsTheWholeLaneBack(t *testing.T) {
	q := &fakeQuerier{value: errorRatios(map[string]float64{"svc-a": 0.3, "svc-b": 0, "svc-c": 0})}
	e := newEnv(t, spec(), q, nil)
	e.run(t, 5)
	la := e.analysis(t)
	if la.Status.Phase != lanesv1alpha1.PhaseFailed || la.Status.Verdict == nil {
		t.Fatalf("phase %s, verdict %+v; want Failed (events %q)", la.Status.Phase, la.Status.Verdict, e.recorded)
	}
	for _, want := range []string{"metric error-ratio", "hop svc-a", "rollout-a", "above the maximum"} {
		if !strings.Contains(la.Status.Verdict.Message, want) {
			t.Errorf("verdict %q does not name %q", la.Status.Verdict.Message, want)
		}
	}
	if got := strings.Join(e.patched, ","); got != "a,c" {
		t.Errorf("rolled back workloads %q, want a,c: the whole lane, not only the failing hop", got)
	}
	if len(e.approved) != 0 {
		t.Errorf("approved %v, want nothing", e.approved)
	}
	d := &appsv1.Deployment{}
	if err := e.c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "c"}, d); err != nil {
		t.Fatal(err)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "c:v1" {
		t.Errorf("c's image %s after the rollback, want its stable c:v1", img)
	}
	if !e.hasEvent("Warning VerdictFailed", "hop svc-a") || !e.hasEvent("Warning RolledBack", "rollout-a (to revision old), rollout-c (to revision old)") {
		t.Errorf("events %q lack the failure and the rollback", e.recorded)
	}
	// Once acted upon, the verdict is not acted upon again.
	e.patched = nil
	e.run(t, 3)
	if len(e.patched) != 0 {
		t.Errorf("rolled back again: %v", e.patched)
	}
}

func TestPauseAndWarnLeavesTheLanePaused(t *testing.T) {
	q := &fakeQuerier{value: errorRatios(map[string]float64{"svc-a": 0.3})}
	s := spec()
	s.OnFailure = lanesv1alpha1.FailureActionPauseAndWarn
	e := newEnv(t, s, q, nil)
	e.run(t, 5)
	la := e.analysis(t)
	if la.Status.Phase != lanesv1alpha1.PhaseFailed || len(e.patched) != 0 || len(e.approved) != 0 {
		t.Fatalf("phase %s, patched %v, approved %v; want Failed with nothing touched", la.Status.Phase, e.patched, e.approved)
	}
	if !e.hasEvent("Warning PausedAndWarned", "left paused") {
		t.Errorf("events %q lack the warning", e.recorded)
	}
}

func TestMissingDataIsNeverApproved(t *testing.T) {
	tests := map[string]func(string) (float64, error){
		"prometheus unreachable": func(string) (float64, error) {
			return 0, errors.New("dial tcp 127.0.0.1:9090: connect: connection refused")
		},
		"no lane traffic": func(q string) (float64, error) {
			if strings.HasPrefix(q, "sum(increase(") {
				return 0, nil
			}
			return 0, nil
		},
		"NaN": func(q string) (float64, error) {
			if strings.HasPrefix(q, "sum(increase(") {
				return 100, nil
			}
			return math.NaN(), nil
		},
	}
	for name, value := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, spec(), &fakeQuerier{value: value}, nil)
			e.run(t, 8)
			la := e.analysis(t)
			if la.Status.Phase != lanesv1alpha1.PhaseInconclusive || la.Status.Inconclusive != 2 {
				t.Fatalf("phase %s with %d inconclusive; want Inconclusive after 2 (limit 1); events %q", la.Status.Phase, la.Status.Inconclusive, e.recorded)
			}
			if len(e.approved) != 0 || len(e.patched) != 0 {
				t.Errorf("approved %v, patched %v; want the lane left paused", e.approved, e.patched)
			}
			if !e.hasEvent("Warning VerdictInconclusive", "nothing is approved") || !e.hasEvent("Warning LeftPaused", "") {
				t.Errorf("events %q lack the inconclusive warning", e.recorded)
			}
			if c := meta.FindStatusCondition(la.Status.Conditions, ConditionCompleted); c == nil || c.Reason != ReasonLeftPaused {
				t.Errorf("Completed condition %+v, want reason LeftPaused", c)
			}
		})
	}
}

// A new leader resumes from status: the count so far, and a verdict written but not acted upon.
func TestResumesFromStatus(t *testing.T) {
	q := &fakeQuerier{value: errorRatios(map[string]float64{})}
	t.Run("counting", func(t *testing.T) {
		last := metav1.NewTime(time.Date(2025, 1, 1, 11, 59, 55, 0, time.UTC))
		st := &lanesv1alpha1.LaneAnalysisStatus{Phase: lanesv1alpha1.PhaseMeasuring, CurrentStep: 1, CurrentMeasurement: 1, Passed: 1, LastMeasurementTime: &last}
		e := newEnv(t, spec(), q, st)
		e.run(t, 3)
		la := e.analysis(t)
		if la.Status.Phase != lanesv1alpha1.PhasePassed || la.Status.CurrentMeasurement != 2 {
			t.Fatalf("phase %s after %d measurements; want Passed after one more measurement than the status had", la.Status.Phase, la.Status.CurrentMeasurement)
		}
	})
	t.Run("verdict not acted upon", func(t *testing.T) {
		st := &lanesv1alpha1.LaneAnalysisStatus{Phase: lanesv1alpha1.PhasePassed, CurrentStep: 1, CurrentMeasurement: 2, Passed: 2,
			Verdict:    &lanesv1alpha1.Verdict{Result: lanesv1alpha1.ResultPassed, Message: "The lane passed.", Time: metav1.NewTime(time.Date(2025, 1, 1, 11, 0, 0, 0, time.UTC))},
			Conditions: []metav1.Condition{{Type: ConditionCompleted, Status: metav1.ConditionFalse, Reason: ReasonActing, LastTransitionTime: metav1.Now()}}}
		e := newEnv(t, spec(), q, st)
		e.noQuerier = true
		e.run(t, 1)
		if got := strings.Join(e.approved, ","); got != "rollout-a,rollout-c" {
			t.Errorf("approved %q after the failover, want rollout-a,rollout-c without measuring again", got)
		}
	})
}

// Kruise v0.6.2 reports a last step of 100% as StepPaused for a moment and completes it without an
// approval: that is no step to measure, and the last step's verdict stays.
func TestLastFullStepIsNotMeasured(t *testing.T) {
	q := &fakeQuerier{value: errorRatios(map[string]float64{})}
	st := &lanesv1alpha1.LaneAnalysisStatus{Phase: lanesv1alpha1.PhasePassed, CurrentStep: 1, CurrentMeasurement: 2, Passed: 2,
		Verdict:    &lanesv1alpha1.Verdict{Result: lanesv1alpha1.ResultPassed, Message: "The lane passed.", Time: metav1.NewTime(time.Date(2025, 1, 1, 11, 0, 0, 0, time.UTC))},
		Conditions: []metav1.Condition{{Type: ConditionCompleted, Status: metav1.ConditionTrue, Reason: ReasonApproved, LastTransitionTime: metav1.Now()}}}
	e := newEnv(t, spec(), q, st)
	for _, name := range []string{"rollout-a", "rollout-c"} {
		ro := &rolloutsv1beta1.Rollout{}
		if err := e.c.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: name}, ro); err != nil {
			t.Fatal(err)
		}
		ro.Spec.Strategy.Canary.Steps = []rolloutsv1beta1.CanaryStep{{Replicas: ptr.To(intstr.FromInt32(1))}, {Replicas: ptr.To(intstr.FromString("100%"))}}
		if err := e.c.Update(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
		ro.Status.CanaryStatus.CurrentStepIndex = 2
		if err := e.c.Status().Update(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
	}
	e.run(t, 3)
	la := e.analysis(t)
	if la.Status.Phase != lanesv1alpha1.PhasePassed || la.Status.CurrentStep != 1 || la.Status.Verdict == nil || len(q.queries) != 0 {
		t.Errorf("phase %s, step %d, verdict %+v, %d queries; want the step 1 verdict kept and nothing measured at the 100%% step", la.Status.Phase, la.Status.CurrentStep, la.Status.Verdict, len(q.queries))
	}
	if len(e.approved) != 0 {
		t.Errorf("approved %v at a step Kruise completes by itself", e.approved)
	}
}
