package webhook

import (
	"encoding/json"
	"testing"

	"k8s.io/client-go/tools/record"

	"github.com/kruise-lanes/kruise-lanes/trafficrouting"
)

// FuzzPodLabeler admits arbitrary pod JSON, unknown fields included, against a lane whose canary
// pods get labels of three dialects. The handler must never panic, any patch it returns must
// apply to the pod as sent and change nothing but labels and annotations, and the metadata it
// decodes (decodePodMetadata) must be, error included, what decoding the whole pod gives.
func FuzzPodLabeler(f *testing.F) {
	f.Add([]byte(canaryPodJSON))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":null,"annotations":null,"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"pod-template-hash":"new"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]}}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"pod-template-hash":"new","alicloud.service.tag":"blue","a/b~c":"x"},"annotations":{"kruise-lanes.io/managed-labels":"alicloud.service.tag,gone","kruise-lanes.io/original-labels":"{\"alicloud.service.tag\":1}"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]},"spec":{"x":[1,2]}}`))
	f.Add([]byte(`{"kind":"Pod","metadata":{"ownerReferences":[{"kind":"ReplicaSet","name":"a-new"}]}}`))
	f.Add([]byte(`{"spec":{"metadata":{"labels":{"x":"y"}},"n":[-0.5e+3,true,null]},"metadata":{"labels":{"pod-template-hash":"new"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]}}`))
	f.Add([]byte(`{"metadata":{"labels":{"pod-template-hash":"new"}},"kind":"Pod","metadata":{"labels":{"app":"a"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]}}`))
	f.Add([]byte(`{"metad\u0061ta":{"labels":{"pod-template-hash":"new"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]}}`))
	f.Add([]byte(`{"kind":5,"metadata":{"labels":{"pod-template-hash":"new"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]}}`))
	f.Add([]byte(`{"metadata":{"labels":{"pod-template-hash":"new"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]},"spec":tru}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`[]`))
	h, _, _ := handler(f, fixture("gray"))
	h.Recorder = record.NewFakeRecorder(1 << 16)
	h.Resolver.Defaults.Dialects = append(h.Resolver.Defaults.Dialects, trafficrouting.DialectASM)
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkSameMetadata(t, raw)
		resp := h.Handle(t.Context(), admissionOf(raw, false))
		if len(resp.Patch) == 0 {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("patch %q for input that is not JSON", resp.Patch)
		}
		checkMetadataOnly(t, raw, resp)
	})
}
