package app

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

func TestDefaultsPublisherAppliesTheFlags(t *testing.T) {
	o := NewOptions()
	o.LaneHeader, o.Dialects, o.BaseLabels = "x-lane", "asm,lanes", true
	d, err := o.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	scheme, err := trafficrouting.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	p := &defaultsPublisher{client: c, namespace: "lanes-system", defaults: d, log: logr.Discard()}
	for range 2 { // a second leader publishes over the first
		if err := p.publish(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(t.Context(), types.NamespacedName{Namespace: "lanes-system", Name: trafficrouting.DefaultsConfigMapName}, cm); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"laneHeader": "x-lane", "dialects": "asm,lanes", "baseLabels": "true"}, cm.Data); diff != "" {
		t.Errorf("ConfigMap data (-want +got):\n%s", diff)
	}
	got, err := trafficrouting.DefaultsFromConfigMapData(cm.Data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, got); diff != "" {
		t.Errorf("defaults read back (-want +got):\n%s", diff)
	}
}
