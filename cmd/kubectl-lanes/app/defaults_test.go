package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openkruise/rollouts/api/v1alpha1"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
	"github.com/kruise-lanes/kruise-lanes/trafficrouting/laneops"
)

func TestLaneDefaults(t *testing.T) {
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	published := trafficrouting.Defaults{LaneHeader: "x-lane", Dialects: []trafficrouting.Dialect{trafficrouting.DialectASM}, BaseLabels: true}
	configMap := func(ns string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: trafficrouting.DefaultsConfigMapName}, Data: data}
	}
	tests := map[string]struct {
		args       []string
		objs       []client.Object
		getErr     error
		want       trafficrouting.Defaults
		wantSource string
		wantErr    string
	}{
		"the manager's ConfigMap": {
			objs:       []client.Object{configMap("lanes-system", published.ConfigMapData())},
			want:       published,
			wantSource: "defaults: from ConfigMap lanes-system/kruise-lanes-defaults: lane header x-lane, dialects asm, base labels true",
		},
		"the manager in another namespace": {
			args:       []string{"--lanes-namespace=ops"},
			objs:       []client.Object{configMap("ops", published.ConfigMapData())},
			want:       published,
			wantSource: "defaults: from ConfigMap ops/kruise-lanes-defaults",
		},
		"no ConfigMap: built-in, and said": {
			want:       trafficrouting.DefaultDefaults(),
			wantSource: "defaults: built-in (ConfigMap lanes-system/kruise-lanes-defaults not found): lane header x-mse-tag, dialects mse,opensergo, base labels false",
		},
		"ConfigMap not readable: built-in, and said": {
			getErr:     apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, trafficrouting.DefaultsConfigMapName, errors.New("no RBAC")),
			want:       trafficrouting.DefaultDefaults(),
			wantSource: "defaults: built-in (ConfigMap lanes-system/kruise-lanes-defaults unreadable: configmaps \"kruise-lanes-defaults\" is forbidden",
		},
		"one flag over the ConfigMap": {
			args:       []string{"--lane-header=x-env"},
			objs:       []client.Object{configMap("lanes-system", published.ConfigMapData())},
			want:       trafficrouting.Defaults{LaneHeader: "x-env", Dialects: published.Dialects, BaseLabels: true},
			wantSource: "defaults: from flags (--lane-header), otherwise from ConfigMap lanes-system/kruise-lanes-defaults: lane header x-env",
		},
		"every flag: the ConfigMap is not read": {
			args:       []string{"--lane-header=x-env", "--dialects=lanes", "--base-labels=false"},
			objs:       []client.Object{configMap("lanes-system", map[string]string{"laneHeader": "x y"})},
			want:       trafficrouting.Defaults{LaneHeader: "x-env", Dialects: []trafficrouting.Dialect{trafficrouting.DialectLanes}},
			wantSource: "defaults: from flags: lane header x-env, dialects lanes, base labels false",
		},
		"malformed ConfigMap": {
			objs:    []client.Object{configMap("lanes-system", map[string]string{"laneHeader": "x-lane", "dialects": "nacos", "baseLabels": "true"})},
			wantErr: `ConfigMap lanes-system/kruise-lanes-defaults holds no usable lane defaults (dialects: unknown label dialect "nacos"; known: mse, opensergo, asm, istio, lanes); fix it, delete it, or pass --lane-header, --dialects and --base-labels`,
		},
		"bad flag": {
			args:    []string{"--dialects=nacos"},
			wantErr: `--dialects: unknown label dialect "nacos"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := &defaultsFlags{}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tc.objs...)
			if tc.getErr != nil {
				b = b.WithInterceptorFuncs(interceptorGetErr(tc.getErr))
			}
			d, source, err := f.LaneDefaults(t.Context(), b.Build())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, d); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(source, tc.wantSource) {
				t.Errorf("source %q, want it to start with %q", source, tc.wantSource)
			}
		})
	}
}

// interceptorGetErr makes every Get fail with err.
func interceptorGetErr(err error) interceptor.Funcs {
	return interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
		return err
	}}
}

// A lane that injects only the manager's --lane-header resolves with the manager's defaults,
// and not with the built-in ones (which is what status and trace used before).
func TestLoadLaneUsesTheDefaults(t *testing.T) {
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	tr := &v1alpha1.TrafficRouting{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lane"}}
	tr.Spec.Strategy.RequestHeaderModifier = &gatewayv1beta1.HTTPHeaderFilter{Set: []gatewayv1beta1.HTTPHeader{{Name: "x-lane", Value: "blue"}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tr).Build()

	manager := trafficrouting.DefaultDefaults()
	manager.LaneHeader = "x-lane"
	st, err := laneops.Load(t.Context(), c, "shop", "lane", manager)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lane == nil || st.Lane.Tag != "blue" {
		t.Errorf("with the manager's defaults: lane %+v (%v), want tag blue", st.Lane, st.LaneErr)
	}
	st, err = laneops.Load(t.Context(), c, "shop", "lane", trafficrouting.DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if st.Lane != nil || st.LaneErr == nil {
		t.Errorf("with the built-in defaults: lane %+v, want it misconfigured (x-mse-tag is not injected)", st.Lane)
	}
}
