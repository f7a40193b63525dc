package app

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kruise-lanes/kruise-lanes/analysis/controller"
	lanesv1alpha1 "github.com/kruise-lanes/kruise-lanes/api/v1alpha1"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// setUpLaneAnalysis adds the LaneAnalysis controller, when the API server serves its CRD.
func setUpLaneAnalysis(mgr ctrl.Manager, defaults trafficrouting.Defaults) error {
	log := ctrl.Log.WithName("setup")
	if _, err := mgr.GetRESTMapper().RESTMapping(lanesv1alpha1.GroupVersion.WithKind("LaneAnalysis").GroupKind(), lanesv1alpha1.GroupVersion.Version); err != nil {
		log.Info("lane analysis off: the LaneAnalysis CRD is not installed (the chart's crds/ has it)", "reason", err.Error())
		return nil
	}
	m, err := controller.NewMetrics(crmetrics.Registry)
	if err != nil {
		return fmt.Errorf("register lane analysis metrics: %w", err)
	}
	if err := (&controller.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Defaults: defaults,
		Recorder: mgr.GetEventRecorderFor("lanes-analysis"), NewQuerier: controller.NewPrometheusQuerier, Metrics: m,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the lane analysis controller: %w", err)
	}
	log.Info("lane analysis on")
	return nil
}
