package trafficrouting

import (
	"errors"
	"testing"

	"github.com/openkruise/rollouts/api/v1alpha1"
	netv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestResolveWithEntryChecksOnlyTheMSEClass(t *testing.T) {
	// The stable Ingress asks for a service subset and names another lane header than the lane's:
	// the mse provider would name the subset from x-env, not x-mse-tag.
	ing := &netv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: map[string]string{
		AnnotationServiceSubset: "", AnnotationLaneHeader: "x-env",
	}}}
	c := fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(ing).Build()
	for class, refused := range map[string]bool{"mse": true, "lanes-mse": true, "nginx": false, "": false, "higress": false} {
		tr := lane("lane", nil, "gray")
		tr.Spec.ObjectRef = []v1alpha1.TrafficRoutingRef{{Service: "web", Ingress: &v1alpha1.IngressTrafficRouting{ClassType: class, Name: "web"}}}
		_, err := ResolveWithEntry(t.Context(), c, tr, DefaultDefaults())
		if got := errors.Is(err, ErrMisconfigured); got != refused {
			t.Errorf("class %q: error %v, want refused %v", class, err, refused)
		}
	}
}
