package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kruise-lanes/kruise-lanes/analysis"
	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

// Condition types of a LaneAnalysis.
const (
	// ConditionReady: the spec, the lane and the bearer token Secret are usable.
	ConditionReady = "Ready"
	// ConditionMeasuring: a step is being measured.
	ConditionMeasuring = "Measuring"
	// ConditionCompleted: the current step's verdict was acted upon (reason Approved, RolledBack,
	// PausedAndWarned or LeftPaused); False with reason Acting while the action is under way.
	ConditionCompleted = "Completed"
)

// actAfterVerdict is how soon a reconcile that wrote a verdict runs again to act on it.
const actAfterVerdict = 100 * time.Millisecond

// Reasons of the Completed condition and of the verdict Events.
const (
	ReasonActing          = "Acting"
	ReasonApproved        = "Approved"
	ReasonRolledBack      = "RolledBack"
	ReasonPausedAndWarned = "PausedAndWarned"
	ReasonLeftPaused      = "LeftPaused"
)

// Reconciler runs LaneAnalyses.
type Reconciler struct {
	Client client.Client
	// APIReader reads the bearer token Secrets (by name, not through a cache of every Secret),
	// the members' pods (the manager's cache keeps pods as metadata only, without their
	// readiness) and, for a rollback, the stable pod template (the manager's cache keeps none:
	// trafficrouting.CacheTransform).
	APIReader client.Reader
	Defaults  trafficrouting.Defaults
	Recorder  record.EventRecorder
	// NewQuerier builds the Prometheus client of a spec (NewPrometheusQuerier in production).
	NewQuerier QuerierFactory
	Metrics    *Metrics
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager runs the reconciler in mgr (on the leader only, as every controller): it
// reconciles a LaneAnalysis when its spec changes and when a Rollout or TrafficRouting of its
// lane changes.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("lane-analysis").
		For(&lanesv1alpha1.LaneAnalysis{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&rolloutsv1beta1.Rollout{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.analysesOf(ctx, o.GetNamespace(), o.GetAnnotations()[trafficrouting.TrafficRoutingAnnotation])
		})).
		Complete(r)
}

// analysesOf lists the LaneAnalyses of a lane.
func (r *Reconciler) analysesOf(ctx context.Context, namespace, lane string) []reconcile.Request {
	if lane == "" {
		return nil
	}
	list := &lanesv1alpha1.LaneAnalysisList{}
	if err := r.Client.List(ctx, list, client.InNamespace(namespace)); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing lane analyses", "namespace", namespace)
		return nil
	}
	var out []reconcile.Request
	for _, a := range list.Items {
		if a.Spec.Lane == lane {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
		}
	}
	return out
}

// Reconcile takes the measurement that is due, decides the step and acts on its verdict.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	la := &lanesv1alpha1.LaneAnalysis{}
	if err := r.Client.Get(ctx, req.NamespacedName, la); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !la.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("lane", la.Spec.Lane)
	ctx = ctrl.LoggerInto(ctx, log)
	before := la.Status.DeepCopy()
	res, err := r.reconcile(ctx, la)
	la.Status.ObservedGeneration = la.Generation
	if !statusEqual(before, &la.Status) {
		if uerr := r.Client.Status().Update(ctx, la); uerr != nil {
			return ctrl.Result{}, errors.Join(err, fmt.Errorf("update status of lane analysis %s: %w", req.NamespacedName, uerr))
		}
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, la *lanesv1alpha1.LaneAnalysis) (ctrl.Result, error) {
	now := r.now()
	interval := intervalOf(la)
	if err := analysis.Validate(&la.Spec); err != nil {
		r.fail(la, "InvalidSpec", err.Error())
		return ctrl.Result{}, nil
	}
	st, err := laneops.LoadReadingPods(ctx, r.Client, r.APIReader, la.Namespace, la.Spec.Lane, r.Defaults)
	switch {
	case errors.Is(err, laneops.ErrLaneNotFound):
		r.fail(la, "LaneNotFound", err.Error())
		return ctrl.Result{RequeueAfter: interval}, nil
	case err != nil:
		return ctrl.Result{}, err
	case st.Lane == nil:
		r.fail(la, "LaneMisconfigured", st.LaneErr.Error())
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	r.setCondition(la, ConditionReady, metav1.ConditionTrue, "LaneFound", fmt.Sprintf("lane %s (tag %s) has %d members", st.Lane.Name, st.Lane.Tag, len(st.Members)))
	if la.Status.Phase == lanesv1alpha1.PhaseError || la.Status.Phase == "" {
		la.Status.Phase = lanesv1alpha1.PhasePending
	}

	v := laneops.Judge(st, laneops.GoalPaused, nil)
	if !v.Done {
		why := v.NotYet
		if v.Failed != "" {
			why = v.Failed
		}
		if pausedStep(st) == 0 && noneReleasing(st) {
			// The release is over (completed or rolled back): the next one starts afresh; the
			// last verdict stays in status.
			la.Status.CurrentStep = 0
			if la.Status.Phase == lanesv1alpha1.PhaseMeasuring {
				la.Status.Phase = lanesv1alpha1.PhasePending
			}
		}
		r.setCondition(la, ConditionMeasuring, metav1.ConditionFalse, "NotPaused", "nothing is measured until every releasing member is paused at a step: "+why)
		return ctrl.Result{}, nil
	}

	step := pausedStep(st)
	if step == 0 {
		r.setCondition(la, ConditionMeasuring, metav1.ConditionFalse, "NotPaused", "the lane's last step is 100%, which Kruise completes without a pause")
		return ctrl.Result{}, nil
	}
	if la.Status.CurrentStep != step {
		r.startStep(la, step, now)
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	if la.Status.Verdict != nil {
		return r.act(ctx, la, st)
	}
	if due := r.due(la, interval); now.Before(due) {
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}

	m, err := r.measure(ctx, la, st, now)
	if err != nil {
		r.fail(la, "InvalidSpec", err.Error())
		return ctrl.Result{}, nil
	}
	r.record(la, m, now)
	d := analysis.Decide(analysis.Tally{Passed: la.Status.Passed, Failed: la.Status.Failed, Inconclusive: la.Status.Inconclusive}, analysis.LimitsOf(&la.Spec), m)
	if !d.Done {
		return ctrl.Result{RequeueAfter: interval}, nil
	}
	r.decide(la, d, now)
	// The verdict is written before it is acted upon, so that a failover acts on it again.
	return ctrl.Result{RequeueAfter: actAfterVerdict}, nil
}

func noneReleasing(st *laneops.LaneState) bool {
	for _, m := range st.Members {
		if m.Releasing() {
			return false
		}
	}
	return true
}

func intervalOf(la *lanesv1alpha1.LaneAnalysis) time.Duration {
	if la.Spec.Interval == nil || la.Spec.Interval.Duration <= 0 {
		return time.Minute
	}
	return la.Spec.Interval.Duration
}

// due is when the next measurement is: an interval after the last one, or after the step began.
func (r *Reconciler) due(la *lanesv1alpha1.LaneAnalysis, interval time.Duration) time.Time {
	if t := la.Status.LastMeasurementTime; t != nil {
		return t.Add(interval)
	}
	if c := meta.FindStatusCondition(la.Status.Conditions, ConditionMeasuring); c != nil && c.Status == metav1.ConditionTrue {
		return c.LastTransitionTime.Add(interval)
	}
	return r.now()
}

// startStep resets the status for a step the lane is newly paused at.
func (r *Reconciler) startStep(la *lanesv1alpha1.LaneAnalysis, step int32, now time.Time) {
	la.Status.CurrentStep = step
	la.Status.CurrentMeasurement, la.Status.Passed, la.Status.Failed, la.Status.Inconclusive = 0, 0, 0, 0
	la.Status.LastMeasurementTime = nil
	la.Status.Metrics = nil
	la.Status.Verdict = nil
	la.Status.Phase = lanesv1alpha1.PhaseMeasuring
	meta.RemoveStatusCondition(&la.Status.Conditions, ConditionCompleted)
	meta.RemoveStatusCondition(&la.Status.Conditions, ConditionMeasuring)
	meta.SetStatusCondition(&la.Status.Conditions, metav1.Condition{Type: ConditionMeasuring, Status: metav1.ConditionTrue, Reason: "StepPaused",
		Message: fmt.Sprintf("the lane is paused at step %d; the first measurement is due in %s", step, intervalOf(la)), LastTransitionTime: metav1.NewTime(now), ObservedGeneration: la.Generation})
	r.Recorder.Eventf(la, corev1.EventTypeNormal, "StepPaused", "The lane is paused at step %d: measuring every %s.", step, intervalOf(la))
}

// measure takes one measurement; a missing bearer token Secret makes it inconclusive. The error
// is a spec error.
func (r *Reconciler) measure(ctx context.Context, la *lanesv1alpha1.LaneAnalysis, st *laneops.LaneState, now time.Time) (analysis.Measurement, error) {
	inconclusive := func(msg string) analysis.Measurement {
		return analysis.Measurement{Result: lanesv1alpha1.ResultInconclusive, Message: msg}
	}
	lane, err := LaneOf(ctx, r.Client, st)
	if err != nil {
		return inconclusive(err.Error()), nil
	}
	token, err := BearerToken(ctx, r.APIReader, la)
	if err != nil {
		return inconclusive(err.Error()), nil
	}
	q, err := r.NewQuerier(la.Spec.Prometheus, token)
	if err != nil {
		return analysis.Measurement{}, err
	}
	return analysis.Measure(ctx, q, &la.Spec, lane, now)
}

// BearerToken reads the spec's bearer token from its Secret ("" when the spec names none).
func BearerToken(ctx context.Context, c client.Reader, la *lanesv1alpha1.LaneAnalysis) (string, error) {
	ref := la.Spec.Prometheus.BearerTokenSecretRef
	if ref == nil {
		return "", nil
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: la.Namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("the bearer token Secret %s/%s does not exist", la.Namespace, ref.Name)
		}
		return "", fmt.Errorf("read the bearer token Secret %s/%s: %w", la.Namespace, ref.Name, err)
	}
	v, ok := s.Data[ref.Key]
	if !ok || len(v) == 0 {
		return "", fmt.Errorf("the bearer token Secret %s/%s has no key %q", la.Namespace, ref.Name, ref.Key)
	}
	return strings.TrimSpace(string(v)), nil
}

// record counts a measurement in status and announces it.
func (r *Reconciler) record(la *lanesv1alpha1.LaneAnalysis, m analysis.Measurement, now time.Time) {
	s := &la.Status
	t := analysis.Tally{Passed: s.Passed, Failed: s.Failed, Inconclusive: s.Inconclusive}.Add(m.Result)
	s.Passed, s.Failed, s.Inconclusive = t.Passed, t.Failed, t.Inconclusive
	s.CurrentMeasurement++
	s.LastMeasurementTime = &metav1.Time{Time: now}
	if len(m.Metrics) > 0 {
		s.Metrics = m.Metrics
	} else {
		// No metric ran (too little traffic, Prometheus unreachable): every metric is inconclusive.
		s.Metrics = nil
		for _, metric := range la.Spec.Metrics {
			s.Metrics = append(s.Metrics, lanesv1alpha1.MetricStatus{Name: metric.Name, Result: lanesv1alpha1.ResultInconclusive})
		}
	}
	msg := truncate(m.Message)
	s.History = append(s.History, lanesv1alpha1.MeasurementRecord{Step: s.CurrentStep, Measurement: s.CurrentMeasurement, Time: metav1.NewTime(now), Result: m.Result, Message: msg})
	if n := len(s.History) - lanesv1alpha1.MaxHistory; n > 0 {
		s.History = s.History[n:]
	}
	eventType := corev1.EventTypeNormal
	if m.Result != lanesv1alpha1.ResultPassed {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(la, eventType, "Measurement"+string(m.Result), "Step %d, measurement %d: %s: %s", s.CurrentStep, s.CurrentMeasurement, m.Result, msg)
	r.Metrics.measurement(m.Result)
}

// decide records the step's verdict; the action follows.
func (r *Reconciler) decide(la *lanesv1alpha1.LaneAnalysis, d analysis.StepVerdict, now time.Time) {
	la.Status.Verdict = &lanesv1alpha1.Verdict{Result: d.Result, Message: truncate(d.Message), Time: metav1.NewTime(now)}
	switch d.Result {
	case lanesv1alpha1.ResultPassed:
		la.Status.Phase = lanesv1alpha1.PhasePassed
	case lanesv1alpha1.ResultFailed:
		la.Status.Phase = lanesv1alpha1.PhaseFailed
	default:
		la.Status.Phase = lanesv1alpha1.PhaseInconclusive
	}
	r.setCondition(la, ConditionMeasuring, metav1.ConditionFalse, "Verdict", fmt.Sprintf("step %d has a verdict: %s", la.Status.CurrentStep, d.Result))
	r.setCondition(la, ConditionCompleted, metav1.ConditionFalse, ReasonActing, "acting on the verdict: "+la.Status.Verdict.Message)
	eventType := corev1.EventTypeNormal
	if d.Result != lanesv1alpha1.ResultPassed {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(la, eventType, "Verdict"+string(d.Result), "Step %d: %s", la.Status.CurrentStep, la.Status.Verdict.Message)
	r.Metrics.verdict(d.Result)
}

// act carries out the step's verdict once: approve every paused member, roll the lane back, or
// leave it paused. Done again after a failover until the Completed condition is True.
func (r *Reconciler) act(ctx context.Context, la *lanesv1alpha1.LaneAnalysis, st *laneops.LaneState) (ctrl.Result, error) {
	if meta.IsStatusConditionTrue(la.Status.Conditions, ConditionCompleted) {
		return ctrl.Result{}, nil
	}
	v := la.Status.Verdict
	var done []string
	var errs []error
	reason, action := ReasonLeftPaused, "left paused"
	switch {
	case v.Result == lanesv1alpha1.ResultPassed:
		reason, action = ReasonApproved, "approved"
		for _, m := range st.Members {
			if !m.Releasing() || m.StepState() != rolloutsv1beta1.CanaryStepStatePaused {
				continue
			}
			if err := laneops.Approve(ctx, r.Client, m.Rollout); err != nil {
				errs = append(errs, err)
				continue
			}
			done = append(done, m.Rollout.Name)
		}
	case v.Result == lanesv1alpha1.ResultFailed && la.Spec.OnFailure != lanesv1alpha1.FailureActionPauseAndWarn:
		reason, action = ReasonRolledBack, "rolled back"
		for _, m := range st.Members {
			if !m.CanRollBack() {
				continue
			}
			stable, err := laneops.RollBack(ctx, r.Client, r.APIReader, m)
			if err != nil {
				errs = append(errs, fmt.Errorf("roll back %s: %w", m.Rollout.Name, err))
				continue
			}
			done = append(done, fmt.Sprintf("%s (to revision %s)", m.Rollout.Name, stable))
		}
	case v.Result == lanesv1alpha1.ResultFailed:
		reason, action = ReasonPausedAndWarned, "left paused for a person to decide (onFailure: PauseAndWarn)"
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		r.Recorder.Eventf(la, corev1.EventTypeWarning, reason+"Incomplete", "Step %d: the lane could not be %s yet: %v", la.Status.CurrentStep, action, err)
		return ctrl.Result{}, fmt.Errorf("lane %s %s incompletely: %w", la.Spec.Lane, action, err)
	}
	msg := fmt.Sprintf("step %d: the lane was %s", la.Status.CurrentStep, action)
	if len(done) > 0 {
		msg += ": " + strings.Join(done, ", ")
	}
	r.setCondition(la, ConditionCompleted, metav1.ConditionTrue, reason, truncate(msg))
	eventType := corev1.EventTypeNormal
	if reason != ReasonApproved {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(la, eventType, reason, "%s. %s", upperFirst(msg), v.Message)
	return ctrl.Result{}, nil
}

// fail records a problem no measurement can fix.
func (r *Reconciler) fail(la *lanesv1alpha1.LaneAnalysis, reason, msg string) {
	msg = truncate(msg)
	if c := meta.FindStatusCondition(la.Status.Conditions, ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Message != msg {
		r.Recorder.Event(la, corev1.EventTypeWarning, reason, msg)
	}
	la.Status.Phase = lanesv1alpha1.PhaseError
	r.setCondition(la, ConditionReady, metav1.ConditionFalse, reason, msg)
}

func (r *Reconciler) setCondition(la *lanesv1alpha1.LaneAnalysis, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&la.Status.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: truncate(msg), ObservedGeneration: la.Generation, LastTransitionTime: metav1.NewTime(r.now())})
}

// truncate keeps a message within the 1024 characters status allows.
func truncate(s string) string {
	if len(s) <= 1024 {
		return s
	}
	return s[:1021] + "..."
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
