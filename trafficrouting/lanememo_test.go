package trafficrouting

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	rolloutsv1alpha1 "github.com/openkruise/rollouts/api/v1alpha1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// versioned is a lane whose entry is the mse Ingress "web", as an informer holds it.
func versioned(uid, version, tag string) *rolloutsv1alpha1.TrafficRouting {
	tr := lane("lane", nil, tag)
	tr.UID, tr.ResourceVersion = types.UID(uid), version
	tr.Spec.ObjectRef = []rolloutsv1alpha1.TrafficRoutingRef{{Service: "web", Ingress: &rolloutsv1alpha1.IngressTrafficRouting{ClassType: "mse", Name: "web"}}}
	return tr
}

// memoized resolves tr through the resolver's memo and checks the result against
// ResolveWithEntry's unless wantStale (the memo answering for a version it has seen).
func memoized(t *testing.T, r *Resolver, tr *rolloutsv1alpha1.TrafficRouting) (Lane, error) {
	t.Helper()
	shared, gotErr := r.lanes.resolve(t.Context(), r, tr)
	var got Lane
	if shared != nil {
		got = shared.lane
		if diff := cmp.Diff(map[Role]map[string]string{RoleCanary: got.DesiredLabels(RoleCanary), RoleStable: got.DesiredLabels(RoleStable), RoleNone: got.DesiredLabels(RoleNone)},
			map[Role]map[string]string{RoleCanary: shared.labels(RoleCanary), RoleStable: shared.labels(RoleStable), RoleNone: shared.labels(RoleNone)}); diff != "" {
			t.Errorf("the labels remembered differ from the lane's (-want +got):\n%s", diff)
		}
	}
	want, wantErr := ResolveWithEntry(t.Context(), r.Reader, tr, r.Defaults)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lane differs from ResolveWithEntry's (-want +got):\n%s", diff)
	}
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Errorf("error %v, ResolveWithEntry's %v", gotErr, wantErr)
	}
	return got, gotErr
}

func TestLaneMemoFollowsEveryVersion(t *testing.T) {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(ing).Build()
	r := &Resolver{Reader: c, Defaults: DefaultDefaults()}

	if l, _ := memoized(t, r, versioned("u1", "1", "gray")); l.Tag != "gray" {
		t.Errorf("tag %q, want gray", l.Tag)
	}
	// Same UID and resourceVersion: the same object, answered from the memo.
	if l, _ := r.lanes.resolve(t.Context(), r, versioned("u1", "1", "blue")); l.lane.Tag != "gray" {
		t.Errorf("tag %q: the memo did not answer for the version it has seen", l.lane.Tag)
	}
	if l, _ := memoized(t, r, versioned("u1", "2", "blue")); l.Tag != "blue" {
		t.Errorf("after an update: tag %q, want blue", l.Tag)
	}
	if l, _ := memoized(t, r, versioned("u2", "2", "green")); l.Tag != "green" {
		t.Errorf("recreated with the same resourceVersion: tag %q, want green", l.Tag)
	}
	if l, _ := memoized(t, r, versioned("u2", "", "red")); l.Tag != "red" {
		t.Errorf("without a resourceVersion: tag %q, want red", l.Tag)
	}

	r.Defaults.Dialects = []Dialect{DialectASM}
	if l, _ := memoized(t, r, versioned("u2", "2", "green")); !cmp.Equal(l.Dialects, []Dialect{DialectASM}) {
		t.Errorf("after the defaults changed: dialects %v, want asm", l.Dialects)
	}
	r.Defaults = DefaultDefaults()

	// The entry Ingress asks for a service subset named from another header: misconfigured, and
	// remembered as such until the Ingress changes again.
	ing.Annotations = map[string]string{AnnotationServiceSubset: "", AnnotationLaneHeader: "x-env"}
	if err := c.Update(t.Context(), ing); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := memoized(t, r, versioned("u2", "2", "green")); !errors.Is(err, ErrMisconfigured) {
			t.Errorf("after the Ingress changed: error %v, want misconfigured", err)
		}
	}
	if err := c.Delete(t.Context(), ing); err != nil {
		t.Fatal(err)
	}
	if _, err := memoized(t, r, versioned("u2", "2", "green")); err != nil {
		t.Errorf("after the Ingress went: error %v, want none", err)
	}
}

func TestLaneMemoKeepsNoReadFailure(t *testing.T) {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	failing := true
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(ing).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if failing {
				return errors.New("cache not synced")
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	r := &Resolver{Reader: c, Defaults: DefaultDefaults()}
	if _, err := memoized(t, r, versioned("u1", "1", "gray")); err == nil || errors.Is(err, ErrMisconfigured) {
		t.Errorf("error %v, want the read failure", err)
	}
	// A misconfigured lane says so before its Ingress is read, as ResolveWithEntry does.
	if _, err := memoized(t, r, versioned("u1", "1", "")); !errors.Is(err, ErrMisconfigured) {
		t.Errorf("error %v, want misconfigured", err)
	}
	failing = false
	if l, err := memoized(t, r, versioned("u1", "1", "gray")); err != nil || l.Tag != "gray" {
		t.Errorf("once the read works: lane %+v error %v, want tag gray", l, err)
	}
}
