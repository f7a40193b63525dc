package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	rolloutsv1beta1 "github.com/openkruise/rollouts/api/v1beta1"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// The shape of the benchmark's cluster: each Rollout releases a Deployment of 10 pods (8 stable,
// 2 canary, partition style) through two ReplicaSets; each namespace has 10 lanes; every other
// Rollout is releasing. benchScale says how many namespaces and Rollouts per namespace.
const (
	benchLanesPerNS      = 10
	benchPodsPerWorkload = 10
	benchCanariesPerLoad = 2
)

// benchScale is the size of the benchmark's cluster: namespaces × rolloutsPerNS Rollouts, ten
// pods each.
type benchScale struct {
	namespaces, rolloutsPerNS int
}

// The scales the issue asks for: 10,000 pods and 1,000 Rollouts; 100,000 pods and 10,000
// Rollouts.
var (
	benchScale10k  = benchScale{namespaces: 10, rolloutsPerNS: 100}
	benchScale100k = benchScale{namespaces: 100, rolloutsPerNS: 100}
)

func (s benchScale) pods() int { return s.namespaces * s.rolloutsPerNS * benchPodsPerWorkload }

func (s benchScale) String() string {
	return fmt.Sprintf("%dk-pods", s.pods()/1000)
}

// indexerReader is a client.Reader over client-go indexers, one per kind, read the way
// controller-runtime's informer cache reads them (its CacheReader): Get and List return deep
// copies unless asked not to (client.UnsafeDisableDeepCopy: then a shallow copy of the cached
// struct, sharing its maps and slices), and a field index is looked up per namespace under the key
// "field:<name>". It stands in
// for the manager's informer cache without an API server; the objects it holds are the objects an
// informer would hold.
type indexerReader struct {
	scheme   *k8sruntime.Scheme
	indexers map[schema.GroupVersionKind]toolscache.Indexer
}

var _ client.Reader = &indexerReader{}

func newIndexerReader(scheme *k8sruntime.Scheme) *indexerReader {
	return &indexerReader{scheme: scheme, indexers: map[schema.GroupVersionKind]toolscache.Indexer{}}
}

func (r *indexerReader) indexer(gvk schema.GroupVersionKind) toolscache.Indexer {
	if idx, ok := r.indexers[gvk]; ok {
		return idx
	}
	idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	if gvk.Kind == "Rollout" {
		// controller-runtime keys a field index by namespace and value, and again under
		// "__all_namespaces" for lists across namespaces.
		err := idx.AddIndexers(toolscache.Indexers{trafficrouting.RolloutWorkloadFieldIndex: func(obj any) ([]string, error) {
			o, _ := obj.(client.Object)
			var keys []string
			for _, v := range trafficrouting.IndexRolloutWorkload(o) {
				keys = append(keys, o.GetNamespace()+"/"+v, "__all_namespaces/"+v)
			}
			return keys, nil
		}})
		if err != nil {
			panic(err)
		}
	}
	r.indexers[gvk] = idx
	return idx
}

// storeIndexers are the indexers lanes-manager hands the Resolver (trafficrouting.IndexersFrom),
// here the reader's own: the same stores its Get and List read.
func (r *indexerReader) storeIndexers() *trafficrouting.Indexers {
	kind := func(group, version, kind string) toolscache.Indexer {
		return r.indexer(schema.GroupVersionKind{Group: group, Version: version, Kind: kind})
	}
	return &trafficrouting.Indexers{
		ReplicaSets:     kind("apps", "v1", "ReplicaSet"),
		Deployments:     kind("apps", "v1", "Deployment"),
		StatefulSets:    kind("apps", "v1", "StatefulSet"),
		Rollouts:        kind(rolloutsv1beta1.GroupVersion.Group, rolloutsv1beta1.GroupVersion.Version, "Rollout"),
		TrafficRoutings: kind(rolloutsv1alpha1.GroupVersion.Group, rolloutsv1alpha1.GroupVersion.Version, "TrafficRouting"),
		EntryIngresses:  kind("networking.k8s.io", "v1", "Ingress"),
	}
}

func (r *indexerReader) add(obj client.Object) error {
	gvk, err := r.gvk(obj)
	if err != nil {
		return err
	}
	return r.indexer(gvk).Add(obj)
}

func (r *indexerReader) gvk(obj k8sruntime.Object) (schema.GroupVersionKind, error) {
	if _, ok := obj.(*metav1.PartialObjectMetadata); ok {
		// A metadata-only object names its kind itself, as controller-runtime's metadata cache reads it.
		return obj.GetObjectKind().GroupVersionKind(), nil
	}
	gvks, _, err := r.scheme.ObjectKinds(obj)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("kind of %T: %w", obj, err)
	}
	gvk := gvks[0]
	if _, ok := obj.(client.ObjectList); ok {
		gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	}
	return gvk, nil
}

func (r *indexerReader) Get(_ context.Context, key client.ObjectKey, out client.Object, opts ...client.GetOption) error {
	o := &client.GetOptions{}
	o.ApplyOptions(opts)
	gvk, err := r.gvk(out)
	if err != nil {
		return err
	}
	item, exists, err := r.indexer(gvk).GetByKey(key.String())
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if !exists {
		return apierrors.NewNotFound(schema.GroupResource{Group: gvk.Group, Resource: strings.ToLower(gvk.Kind) + "s"}, key.Name)
	}
	obj := item.(k8sruntime.Object)
	if !ptr.Deref(o.UnsafeDisableDeepCopy, false) {
		obj = obj.DeepCopyObject()
	}
	reflect.ValueOf(out).Elem().Set(reflect.ValueOf(obj).Elem())
	return nil
}

func (r *indexerReader) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	gvk, err := r.gvk(list)
	if err != nil {
		return err
	}
	o := &client.ListOptions{}
	o.ApplyOptions(opts)
	idx := r.indexer(gvk)
	var items []any
	switch {
	case o.FieldSelector != nil:
		reqs := o.FieldSelector.Requirements()
		if len(reqs) != 1 {
			return fmt.Errorf("field selector %s: only one exact field is indexed", o.FieldSelector)
		}
		items, err = idx.ByIndex("field:"+reqs[0].Field, o.Namespace+"/"+reqs[0].Value)
	case o.Namespace != "":
		items, err = idx.ByIndex(toolscache.NamespaceIndex, o.Namespace)
	default:
		items = idx.List()
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", gvk.Kind, err)
	}
	objs := make([]k8sruntime.Object, 0, len(items))
	for _, item := range items {
		obj := item.(k8sruntime.Object)
		if o.LabelSelector != nil {
			m, _ := meta.Accessor(obj)
			if !o.LabelSelector.Matches(labels.Set(m.GetLabels())) {
				continue
			}
		}
		if !ptr.Deref(o.UnsafeDisableDeepCopy, false) {
			obj = obj.DeepCopyObject()
		}
		objs = append(objs, obj)
	}
	return meta.SetList(list, objs)
}

// benchCluster is the cache content at the benchmark's scale, and the admission requests of the
// canary pods of releasing Rollouts (the pods the webhook labels).
type benchCluster struct {
	reader   *indexerReader
	requests [][]byte
}

func benchScheme(b *testing.B) *k8sruntime.Scheme {
	b.Helper()
	s, err := trafficrouting.NewScheme()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// managedFieldsOf is what the API server records on a pod created by the ReplicaSet controller
// and updated by the kubelet; an informer keeps it unless the cache strips it.
func managedFieldsOf() []metav1.ManagedFieldsEntry {
	spec := `{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"00000000-0000-0000-0000-000000000000\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{".":{},"f:requests":{".":{},"f:cpu":{},"f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}`
	status := `{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Initialized\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{".":{},"k:{\"ip\":\"10.0.0.1\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}`
	now := metav1.Now()
	return []metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(spec)}},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(status)}, Subresource: "status"},
	}
}

// benchPod is a pod as the informer holds it (stored) or as the API server sends it for admission
// (the request object: no name, status or managed fields yet).
func benchPod(ns, deploy, hash string, i int, stored bool) *corev1.Pod {
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: benchPodMeta(ns, deploy, hash, i, stored),
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/" + deploy + ":" + hash,
				Ports:                    []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Resources:                corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
			}},
			RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSClusterFirst, SchedulerName: "default-scheduler",
			TerminationGracePeriodSeconds: ptr.To[int64](30),
		},
	}
	if !stored {
		return pod
	}
	pod.Spec.NodeName = "node-1"
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, HostIP: "10.0.0.2", PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}, StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: pod.Spec.Containers[0].Image, ImageID: "sha256:0", ContainerID: "containerd://0",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}},
	}
	return pod
}

// benchPodMeta is the metadata of benchPod: with its name, UID and managed fields when stored.
func benchPodMeta(ns, deploy, hash string, i int, stored bool) metav1.ObjectMeta {
	rs := deploy + "-" + hash
	m := metav1.ObjectMeta{
		Namespace: ns, GenerateName: rs + "-",
		Labels:          map[string]string{"app": deploy, appsv1.DefaultDeploymentUniqueLabelKey: hash},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: types.UID(rs), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
	}
	if stored {
		m.Name = fmt.Sprintf("%s-%05d", rs, i)
		m.UID = types.UID(m.Name)
		m.ResourceVersion = "1"
		m.ManagedFields = managedFieldsOf()
	}
	return m
}

// benchPodMetadata is a stored benchPod as a metadata watch sends it (what the label reconciler's
// metadata informer receives): a PartialObjectMetadata with the pod's whole metadata, managed
// fields included, and no spec or status.
func benchPodMetadata(ns, deploy, hash string, i int) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: benchPodMeta(ns, deploy, hash, i, true)}
}

// benchTemplate is the pod template of a benchmark Deployment and its ReplicaSets: the pod spec
// benchPod creates pods with.
func benchTemplate(ns, deploy string, lbls map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}, Spec: benchPod(ns, deploy, "", 0, false).Spec}
}

// loadBenchCluster fills a cache with the benchmark's objects at scale, each stored as transform
// returns it: the transform an informer cache applies before storing (cache.Options
// DefaultTransform). Objects are as the API server serves them: pods with status and managed
// fields, Deployments and ReplicaSets with their pod template and status.
func loadBenchCluster(b *testing.B, scheme *k8sruntime.Scheme, scale benchScale, transform toolscache.TransformFunc) *benchCluster {
	b.Helper()
	return loadBenchClusterAs(b, scheme, scale, transform, false)
}

// loadBenchClusterAs is loadBenchCluster with, when podsAsMetadata, the pods as a metadata watch
// sends them (benchPodMetadata) instead of typed.
func loadBenchClusterAs(b *testing.B, scheme *k8sruntime.Scheme, scale benchScale, transform toolscache.TransformFunc, podsAsMetadata bool) *benchCluster {
	b.Helper()
	bc := &benchCluster{reader: newIndexerReader(scheme)}
	add := func(obj client.Object) {
		stored, err := transform(obj)
		if err != nil {
			b.Fatal(err)
		}
		if err := bc.reader.add(stored.(client.Object)); err != nil {
			b.Fatal(err)
		}
	}
	pods := 0
	for n := range scale.namespaces {
		ns := fmt.Sprintf("team-%03d", n)
		for l := range benchLanesPerNS {
			add(&rolloutsv1alpha1.TrafficRouting{
				// As an informer holds it: with a UID and a resourceVersion.
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("lane-%d", l), UID: types.UID(fmt.Sprintf("%s-lane-%d", ns, l)), ResourceVersion: "1"},
				Spec: rolloutsv1alpha1.TrafficRoutingSpec{
					ObjectRef: []rolloutsv1alpha1.TrafficRoutingRef{{Service: "entry", Ingress: &rolloutsv1alpha1.IngressTrafficRouting{ClassType: "mse", Name: "entry"}}},
					Strategy: rolloutsv1alpha1.TrafficRoutingStrategy{
						Matches:               []rolloutsv1alpha1.HttpRouteMatch{{Headers: []gatewayv1beta1.HTTPHeaderMatch{{Name: "x-user", Value: "tester"}}}},
						RequestHeaderModifier: &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-mse-tag", Value: fmt.Sprintf("gray%d", l)}}},
					},
				},
			})
		}
		for i := range scale.rolloutsPerNS {
			deploy := fmt.Sprintf("svc-%03d", i)
			stable, canary := "5d8f9c7b6a", "7c6b5a4d3e"
			releasing := i%2 == 0
			deployLabels := map[string]string{"app": deploy}
			if releasing {
				deployLabels = map[string]string{"app": deploy, trafficrouting.StableRevisionLabel: stable}
			}
			add(&appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: deploy, UID: types.UID(ns + deploy), Labels: deployLabels, ResourceVersion: "1", Generation: 2},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](benchPodsPerWorkload), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": deploy}},
					Template: benchTemplate(ns, deploy, map[string]string{"app": deploy}),
				},
				Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: benchPodsPerWorkload, ReadyReplicas: benchPodsPerWorkload, AvailableReplicas: benchPodsPerWorkload, UpdatedReplicas: benchCanariesPerLoad},
			})
			for _, hash := range []string{stable, canary} {
				rsLabels := map[string]string{"app": deploy, appsv1.DefaultDeploymentUniqueLabelKey: hash}
				add(&appsv1.ReplicaSet{
					ObjectMeta: metav1.ObjectMeta{
						Namespace: ns, Name: deploy + "-" + hash, UID: types.UID(deploy + "-" + hash), Labels: rsLabels, ResourceVersion: "1",
						OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy, UID: types.UID(ns + deploy), Controller: ptr.To(true)}},
					},
					Spec:   appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](5), Selector: &metav1.LabelSelector{MatchLabels: rsLabels}, Template: benchTemplate(ns, deploy, rsLabels)},
					Status: appsv1.ReplicaSetStatus{Replicas: 5, ReadyReplicas: 5, AvailableReplicas: 5},
				})
			}
			ro := &rolloutsv1beta1.Rollout{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rollout-" + deploy, Annotations: map[string]string{trafficrouting.TrafficRoutingAnnotation: fmt.Sprintf("lane-%d", i%benchLanesPerNS)}},
				Spec: rolloutsv1beta1.RolloutSpec{
					WorkloadRef: rolloutsv1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy},
					Strategy: rolloutsv1beta1.RolloutStrategy{Canary: &rolloutsv1beta1.CanaryStrategy{Steps: []rolloutsv1beta1.CanaryStep{
						{Replicas: ptr.To(intstr.FromString("20%"))}, {Replicas: ptr.To(intstr.FromString("100%"))},
					}}},
				},
				Status: rolloutsv1beta1.RolloutStatus{Phase: rolloutsv1beta1.RolloutPhaseHealthy},
			}
			if releasing {
				ro.Status.Phase = rolloutsv1beta1.RolloutPhaseProgressing
			}
			add(ro)
			for p := range benchPodsPerWorkload {
				hash := stable
				if releasing && p < benchCanariesPerLoad {
					hash = canary
				}
				if podsAsMetadata {
					add(benchPodMetadata(ns, deploy, hash, p))
				} else {
					add(benchPod(ns, deploy, hash, p, true))
				}
				pods++
			}
			if releasing {
				bc.requests = append(bc.requests, admissionReview(b, benchPod(ns, deploy, canary, 0, false)))
			}
		}
	}
	if pods != scale.pods() {
		b.Fatalf("loaded %d pods, want %d", pods, scale.pods())
	}
	return bc
}

// admissionReview is the body the API server posts for a pod CREATE.
func admissionReview(b *testing.B, pod *corev1.Pod) []byte {
	b.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		b.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "00000000-0000-0000-0000-000000000001", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: pod.Namespace,
			Operation: admissionv1.Create, Object: k8sruntime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

type nopObserver struct{}

func (nopObserver) Admission(Outcome) {}
func (nopObserver) LabelsApplied(int) {}
func (nopObserver) LabelsRemoved(int) {}

// allowAll admits without work: the floor of what serving an admission costs.
type allowAll struct{}

func (allowAll) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

// benchWebhook serves wh as lanes-manager does, logging as it does at its default level: the
// webhook's per-request logger is built (with the request's values) and logs nothing.
func benchWebhook(b *testing.B, wh *admission.Webhook) http.Handler {
	b.Helper()
	quiet := funcr.New(func(string, string) {}, funcr.Options{Verbosity: 0})
	served, err := admission.StandaloneWebhook(wh, admission.StandaloneOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	return served
}

// serve posts one AdmissionReview to a webhook the way the API server does and returns how long
// the server took, checking the response.
func serve(b *testing.B, wh http.Handler, body []byte, wantPatch bool) time.Duration {
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	start := time.Now()
	wh.ServeHTTP(rec, req)
	d := time.Since(start)
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if wantPatch && !bytes.Contains(rec.Body.Bytes(), []byte(`"patch"`)) {
		b.Fatalf("the canary pod was not patched: %s", rec.Body)
	}
	return d
}

func percentile(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p)
	return ds[i]
}

// BenchmarkAdmission measures the server side of the Pod CREATE webhook as lanes-manager serves
// it (PodLabeler.Webhook, an admission.Webhook): its ServeHTTP over an httptest recorder
// (AdmissionReview decoding, the pod's metadata decoding, the lane decision read from the
// informers' stores as lanes-manager reads them (trafficrouting.Indexers), the patch and its
// encoding, the response encoding), with
// no network and no TLS. It runs at two scales (benchScale10k: 10,000 pods and
// 1,000 Rollouts; benchScale100k: ten times that), one sub-benchmark each. Every request is the
// canary pod of a releasing Rollout: the path that reads the most (ReplicaSet, Deployment,
// Rollouts by index, TrafficRouting, entry Ingress) and patches. Each request is also served by
// allowAll, a webhook that admits without work, interleaved with ours in the same run so that both
// see the same machine and the same garbage collector (the cache's heap is live throughout); the
// two take turns going first, so that each reads the body cold as often as the other.
// Reported: p50 and p99 of each, in µs, and ours over allow-all's as p50-ratio and p99-ratio;
// ns/op is the time of one pair of requests.
func BenchmarkAdmission(b *testing.B) {
	scheme := benchScheme(b)
	for _, scale := range []benchScale{benchScale10k, benchScale100k} {
		var bc *benchCluster // loaded once per scale, and only if its sub-benchmark runs
		b.Run(scale.String(), func(b *testing.B) {
			if bc == nil {
				bc = loadBenchCluster(b, scheme, scale, trafficrouting.CacheTransform)
			}
			benchAdmission(b, bc)
		})
	}
}

func benchAdmission(b *testing.B, bc *benchCluster) {
	labeler := benchWebhook(b, (&PodLabeler{
		Resolver: &trafficrouting.Resolver{Reader: bc.reader, Indexers: bc.reader.storeIndexers(), Defaults: trafficrouting.DefaultDefaults()},
		Recorder: &record.FakeRecorder{},
		Observer: nopObserver{},
	}).Webhook())
	baseline := benchWebhook(b, &admission.Webhook{Handler: allowAll{}})
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	base := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Whichever of the two serves a body first reads it from memory, the other from the CPU's
		// cache (at 100,000 pods the bodies outgrow it), so they take turns going first.
		body := bc.requests[rng.IntN(len(bc.requests))]
		if i%2 == 0 {
			lat = append(lat, serve(b, labeler, body, true))
			base = append(base, serve(b, baseline, body, false))
		} else {
			base = append(base, serve(b, baseline, body, false))
			lat = append(lat, serve(b, labeler, body, true))
		}
	}
	b.StopTimer()
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b50, b99 := percentile(base, 0.50), percentile(base, 0.99)
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(b50.Microseconds()), "allow-p50-µs")
	b.ReportMetric(float64(b99.Microseconds()), "allow-p99-µs")
	b.ReportMetric(float64(p50)/float64(b50), "p50-ratio")
	b.ReportMetric(float64(p99)/float64(b99), "p99-ratio")
}

// BenchmarkCacheMemory reports the heap the cache takes once loaded at 10,000 pods / 1,000
// Rollouts and at 100,000 pods / 10,000 Rollouts (with their Deployments, two ReplicaSets each,
// and ten lanes per namespace): what lanes-manager holds at that scale beyond its fixed start-up
// cost. "before" stores objects as lanes-manager did before it trimmed them (typed pods,
// managedFields stripped, cache.TransformStripManagedFields); "after" stores them as lanes-manager's
// cache does: pods as its metadata informer receives them (benchPodMetadata), and every object
// through trafficrouting.CacheTransform. Both load the same objects in the same run.
func BenchmarkCacheMemory(b *testing.B) {
	scheme := benchScheme(b)
	transforms := []struct {
		name      string
		transform toolscache.TransformFunc
		// podsAsMetadata: pods as the manager's metadata informer receives them.
		podsAsMetadata bool
	}{
		{"before", cache.TransformStripManagedFields(), false},
		{"after", trafficrouting.CacheTransform, true},
	}
	for _, scale := range []benchScale{benchScale10k, benchScale100k} {
		for _, tr := range transforms {
			b.Run(scale.String()+"/"+tr.name, func(b *testing.B) {
				var heap, live uint64
				for range b.N {
					before := heapStats()
					bc := loadBenchClusterAs(b, scheme, scale, tr.transform, tr.podsAsMetadata)
					bc.requests = nil // the admission requests are the benchmark's, not the cache's
					after := heapStats()
					heap, live = after.HeapInuse-before.HeapInuse, after.HeapAlloc-before.HeapAlloc
					runtime.KeepAlive(bc)
				}
				b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
				b.ReportMetric(float64(live)/(1<<20), "live-MiB")
				b.ReportMetric(float64(heap)/float64(scale.pods()), "heap-B/pod")
			})
		}
	}
}

// heapStats are the heap figures after a full collection: HeapInuse (the spans the heap holds,
// what the process pays for) and HeapAlloc (the bytes of live objects in them).
func heapStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
