package trafficrouting

import (
	"context"
	"fmt"
	"strings"

	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AnnotationServiceSubset on a lane's stable Ingress asks the mse ingress provider to route the
// canary Ingress to the pods labelled with the lane tag (any value, "" included, asks for it).
const AnnotationServiceSubset = "mse.ingress.kubernetes.io/service-subset"

// EntryIngress is what lane resolution reads of a lane's stable Ingress (the Ingress
// spec.objectRef[0].ingress names): only what the ingress provider script also reads.
type EntryIngress struct {
	Name        string
	Annotations map[string]string
}

// CheckEntryIngress checks a resolved lane against its stable Ingress. Where the Ingress asks for
// a service subset, the mse provider names the subset itself from what it sees: the value
// requestHeaderModifier.set gives the lane header named by the Ingress's kruise-lanes.io/lane-header,
// else the manager's --lane-header (which the installer writes into the script). The lane's pods
// must carry that same tag, so a lane whose header or tag would differ is refused here, as the
// script refuses a step it cannot name the subset for.
func CheckEntryIngress(tr *rolloutsv1alpha1.TrafficRouting, lane Lane, d Defaults, ing EntryIngress) error {
	if _, ok := ing.Annotations[AnnotationServiceSubset]; !ok {
		return nil
	}
	path := field.NewPath("spec", "objectRef").Index(0).Child("ingress", "name")
	scriptHeader, from := ing.Annotations[AnnotationLaneHeader], "annotation "+AnnotationLaneHeader+" of the Ingress"
	if scriptHeader == "" {
		scriptHeader, from = d.LaneHeader, "lanes-manager's --lane-header"
	}
	laneFrom := "lanes-manager's --lane-header"
	if _, ok := tr.Annotations[AnnotationLaneHeader]; ok {
		laneFrom = "annotation " + AnnotationLaneHeader + " of the TrafficRouting"
	}
	var msg string
	value, injects := InjectedValue(tr, scriptHeader)
	switch {
	case !strings.EqualFold(scriptHeader, lane.Header):
		msg = fmt.Sprintf("the Ingress asks for %s, which the provider takes from lane header %q (%s), but the lane's header is %q (%s): name the same lane header on the TrafficRouting and on the Ingress",
			AnnotationServiceSubset, scriptHeader, from, lane.Header, laneFrom)
	case !injects || value == "":
		msg = fmt.Sprintf("the Ingress asks for %s, which the provider takes from the value spec.strategy.requestHeaderModifier.set gives lane header %q, and it gives none: set header %q to the lane tag",
			AnnotationServiceSubset, scriptHeader, scriptHeader)
	case value != lane.Tag:
		msg = fmt.Sprintf("the Ingress asks for %s, which the provider would set to %q, but the lane tag is %q", AnnotationServiceSubset, value, lane.Tag)
	default:
		return nil
	}
	errs := field.ErrorList{field.Invalid(path, ing.Name, msg)}
	return fmt.Errorf("lane %s/%s is %w: %w", tr.Namespace, tr.Name, ErrMisconfigured, errs.ToAggregate())
}

// EntryIngressObject is the empty metadata-only Ingress that ResolveWithEntry reads (and that
// caches and watches use for it).
func EntryIngressObject() *metav1.PartialObjectMetadata {
	ing := &metav1.PartialObjectMetadata{}
	ing.SetGroupVersionKind(networkingv1.SchemeGroupVersion.WithKind("Ingress"))
	return ing
}

// ResolveWithEntry resolves a lane (Resolve) and, when its entry is an Ingress, checks it against
// that Ingress's annotations (CheckEntryIngress), read through r as metadata only. A missing
// Ingress is not checked: Kruise routes nothing without it. An error that wraps ErrMisconfigured
// says what to change; any other is a failure to read the Ingress.
func ResolveWithEntry(ctx context.Context, r client.Reader, tr *rolloutsv1alpha1.TrafficRouting, d Defaults) (Lane, error) {
	lane, err := Resolve(tr, d)
	if err != nil {
		return Lane{}, err
	}
	ing, err := readEntryIngress(ctx, r, tr)
	if err != nil {
		return Lane{}, err
	}
	return checkEntry(tr, lane, d, ing)
}

// entryIngressName is the Ingress whose annotations lane resolution checks: the lane's entry
// Ingress where the mse provider serves it (class type mse, or <prefix>mse with
// --provider-class-prefix), the only provider that names a service subset; Kruise runs another
// script for any other class (nginx when none is set). False when there is none to check.
func entryIngressName(tr *rolloutsv1alpha1.TrafficRouting) (string, bool) {
	if len(tr.Spec.ObjectRef) == 0 || tr.Spec.ObjectRef[0].Ingress == nil || tr.Spec.ObjectRef[0].Ingress.Name == "" {
		return "", false
	}
	if !strings.HasSuffix(tr.Spec.ObjectRef[0].Ingress.ClassType, "mse") {
		return "", false
	}
	return tr.Spec.ObjectRef[0].Ingress.Name, true
}

// readEntryIngress reads the metadata of the lane's entry Ingress (entryIngressName); nil when
// there is none to check or it does not exist.
func readEntryIngress(ctx context.Context, r client.Reader, tr *rolloutsv1alpha1.TrafficRouting) (*metav1.PartialObjectMetadata, error) {
	name, ok := entryIngressName(tr)
	if !ok {
		return nil, nil
	}
	ing := EntryIngressObject()
	// Only the annotations are read, never written: no copy is needed (see Resolver).
	if err := r.Get(ctx, types.NamespacedName{Namespace: tr.Namespace, Name: name}, ing, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get ingress %s/%s of lane %s: %w", tr.Namespace, name, tr.Name, err)
	}
	return ing, nil
}

// entryIngress is readEntryIngress through the Resolver: from its EntryIngresses indexer when it
// has one, else through its Reader.
func (r *Resolver) entryIngress(ctx context.Context, tr *rolloutsv1alpha1.TrafficRouting) (*metav1.PartialObjectMetadata, error) {
	idx := r.indexers().EntryIngresses
	if idx == nil {
		return readEntryIngress(ctx, r.Reader, tr)
	}
	name, ok := entryIngressName(tr)
	if !ok {
		return nil, nil
	}
	obj, err := fromIndexer(idx, tr.Namespace, name)
	if err != nil || obj == nil {
		if err != nil {
			err = fmt.Errorf("get ingress %s/%s of lane %s: %w", tr.Namespace, name, tr.Name, err)
		}
		return nil, err
	}
	ing, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return nil, fmt.Errorf("get ingress %s/%s of lane %s: the cache holds a %T, not its metadata", tr.Namespace, name, tr.Name, obj)
	}
	return ing, nil
}

// checkEntry checks a resolved lane against its entry Ingress as readEntryIngress read it.
func checkEntry(tr *rolloutsv1alpha1.TrafficRouting, lane Lane, d Defaults, ing *metav1.PartialObjectMetadata) (Lane, error) {
	if ing == nil {
		return lane, nil
	}
	name, _ := entryIngressName(tr)
	if err := CheckEntryIngress(tr, lane, d, EntryIngress{Name: name, Annotations: ing.Annotations}); err != nil {
		return Lane{}, err
	}
	return lane, nil
}
