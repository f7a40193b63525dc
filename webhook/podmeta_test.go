package webhook

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
)

// decodeWholePod is what decodePodMetadata must equal: the whole pod decoded into a
// PartialObjectMetadata.
func decodeWholePod(raw []byte) (metav1.ObjectMeta, error) {
	whole := &metav1.PartialObjectMetadata{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, whole); err != nil {
		return metav1.ObjectMeta{}, fmt.Errorf("decode pod metadata: %w", err)
	}
	return whole.ObjectMeta, nil
}

// checkSameMetadata fails unless decodePodMetadata gives decodeWholePod's metadata and error,
// and counts the metadata members as metadataMembers does.
func checkSameMetadata(t *testing.T, raw []byte) {
	t.Helper()
	got, members, gotErr := decodePodMetadata(raw)
	want, wantErr := decodeWholePod(raw)
	if wantErr == nil {
		if want := metadataMembers(raw); members != want {
			t.Errorf("%d metadata members, counted %d", members, want)
		}
	}
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Errorf("error %v, the whole-pod decode's %v", gotErr, wantErr)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metadata differs from the whole-pod decode's (-whole +ours):\n%s", diff)
	}
}

func TestDecodePodMetadataEqualsTheWholePodDecode(t *testing.T) {
	owner := `"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]`
	deep := strings.Repeat("[", maxScanDepth+10) + strings.Repeat("]", maxScanDepth+10)
	for name, tc := range map[string]struct {
		raw string
		// fast: metadataSpans vouches for the metadata spans (false: the whole pod is decoded, and
		// says what it says; a span that does not decode falls back too)
		fast bool
		// labels the decode must find; errs: it must fail
		labels map[string]string
		errs   bool
	}{
		"as the API server sends it": {raw: canaryPodJSON, fast: true, labels: map[string]string{"app": "a", "pod-template-hash": "new", "ASM_TRAFFIC_TAG": "base"}},
		"unknown fields everywhere": {raw: `{"zz":{"a":[1,-2.5e+3,true,false,null,"\u00e9\n"]},"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"a":"1"},"future":{"x":[{}]}},"spec":{"future":[[]]},"status":{}}`,
			fast: true, labels: map[string]string{"a": "1"}},
		"metadata last": {raw: `{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"a:2"}]},"status":{"phase":"Pending"},"metadata":{"labels":{"a":"1"},` + owner + `}}`,
			fast: true, labels: map[string]string{"a": "1"}},
		"metadata first, whitespace around": {raw: " \n\t{ \"metadata\" : { \"labels\" : { \"a\" : \"1\" } } , \"kind\" : \"Pod\" }\r\n ", fast: true, labels: map[string]string{"a": "1"}},
		"duplicate metadata keys merge, as the decoder merges them": {raw: `{"metadata":{"labels":{"a":"1"},"name":"x"},"spec":{},"metadata":{"labels":{"b":"2"}}}`,
			fast: true, labels: map[string]string{"a": "1", "b": "2"}},
		"a later duplicate clears the labels":        {raw: `{"metadata":{"labels":{"a":"1"}},"metadata":{"labels":null}}`, fast: true},
		"metadata inside spec is not the pod's":      {raw: `{"spec":{"metadata":{"labels":{"x":"y"}}},"metadata":{"labels":{"a":"1"}}}`, fast: true, labels: map[string]string{"a": "1"}},
		"Metadata is another field (case-sensitive)": {raw: `{"Metadata":{"labels":{"x":"y"}},"METADATA":{}}`, fast: true},
		"escaped top-level key spelling metadata":    {raw: `{"metad\u0061ta":{"labels":{"a":"1"}}}`, labels: map[string]string{"a": "1"}},
		"escaped top-level key spelling Kind":        {raw: `{"kin\u0064":5,"metadata":{"labels":{"a":"1"}}}`, errs: true},
		"escaped key inside metadata":                {raw: `{"metadata":{"l\u0061bels":{"a\/b":"\u0031"}}}`, fast: true, labels: map[string]string{"a/b": "1"}},
		"null metadata":                              {raw: `{"metadata":null,"kind":null,"apiVersion":null}`, fast: true},
		"empty object":                               {raw: `{}`, fast: true},
		"kind is not a string":                       {raw: `{"kind":5,"metadata":{"labels":{"a":"1"}}}`, errs: true},
		"apiVersion is an object":                    {raw: `{"apiVersion":{},"metadata":{}}`, errs: true},
		"metadata is a string":                       {raw: `{"metadata":"x"}`, fast: true, errs: true},
		"a label is a number":                        {raw: `{"metadata":{"labels":{"a":1}}}`, fast: true, errs: true},
		"not JSON after metadata":                    {raw: `{"metadata":{"labels":{"a":"1"}},"spec":tru}`, errs: true},
		"unterminated":                               {raw: `{"metadata":{"labels":{"a":"1"}},"spec":{`, errs: true},
		"trailing bytes":                             {raw: `{"metadata":{}} x`, errs: true},
		"two objects":                                {raw: `{"metadata":{}}{}`, errs: true},
		"trailing comma":                             {raw: `{"metadata":{},}`, errs: true},
		"leading zero":                               {raw: `{"metadata":{},"spec":{"n":01}}`, errs: true},
		"bare minus":                                 {raw: `{"metadata":{},"spec":[-]}`, errs: true},
		"fraction without digits":                    {raw: `{"metadata":{},"spec":[1.]}`, errs: true},
		"exponent without digits":                    {raw: `{"metadata":{},"spec":[1e+]}`, errs: true},
		"control character in a string":              {raw: "{\"metadata\":{},\"spec\":\"a\tb\"}", errs: true},
		"bad escape":                                 {raw: `{"metadata":{},"spec":"\x"}`, errs: true},
		"short unicode escape":                       {raw: `{"metadata":{},"spec":"\u12"}`, errs: true},
		"invalid UTF-8 is still JSON":                {raw: "{\"metadata\":{\"labels\":{\"a\":\"1\"}},\"spec\":\"\xff\xfe\"}", fast: true, labels: map[string]string{"a": "1"}},
		"deeper than the scan goes":                  {raw: `{"spec":` + deep + `,"metadata":{"labels":{"a":"1"}}}`, labels: map[string]string{"a": "1"}},
		"top-level null":                             {raw: `null`},
		"top-level array":                            {raw: `[]`, errs: true},
		"empty":                                      {raw: ``, errs: true},
	} {
		t.Run(name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if _, fast := metadataSpans(raw); fast != tc.fast {
				t.Errorf("fast path %v, want %v", fast, tc.fast)
			}
			checkSameMetadata(t, raw)
			meta, _, err := decodePodMetadata(raw)
			if (err != nil) != tc.errs {
				t.Fatalf("error %v, want one: %v", err, tc.errs)
			}
			if diff := cmp.Diff(tc.labels, meta.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlainMetadataOnlyWherePlain(t *testing.T) {
	owner := `{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true,"blockOwnerDeletion":false}`
	for name, tc := range map[string]struct {
		metadata string
		plain    bool
	}{
		"as a ReplicaSet creates pods": {`{"generateName":"a-new-","namespace":"shop","labels":{"app":"a","pod-template-hash":"new"},"annotations":{"team":"shop"},"ownerReferences":[` + owner + `]}`, true},
		"empty maps and owners":        {`{"labels":{},"annotations":{},"ownerReferences":[]}`, true},
		"null maps and owners":         {`{"labels":null,"annotations":null,"ownerReferences":null,"creationTimestamp":null}`, true},
		"several owners, fields unknown to ObjectMeta and OwnerReference": {`{"future":{"x":[1,{"y":null}]},"ownerReferences":[` + owner + `,{"kind":"X","future":true,"controller":false}]}`, true},
		"a repeated label keeps the last value":                           {`{"labels":{"a":"1","a":"2"}}`, true},
		"uid and resourceVersion":                                         {`{"uid":"0-1","resourceVersion":"7","name":"p"}`, true},
		"nothing":                                                         {`{}`, true},
		"null":                                                            {`null`, false},
		"a repeated field":                                                {`{"labels":{"a":"1"},"labels":{"b":"2"}}`, false},
		"a repeated owner field":                                          {`{"ownerReferences":[{"name":"a","name":"b"}]}`, false},
		"an escape in a value":                                            {`{"annotations":{"last-applied":"{\"a\":1}"}}`, false},
		"an escape in a key":                                              {`{"l\u0061bels":{"a":"1"}}`, false},
		"non-ASCII":                                                       {`{"labels":{"a":"é"}}`, false},
		"a null label":                                                    {`{"labels":{"a":null}}`, false},
		"a null name":                                                     {`{"name":null}`, false},
		"a null controller":                                               {`{"ownerReferences":[{"controller":null}]}`, false},
		"a creation time":                                                 {`{"creationTimestamp":"2024-01-01T00:00:00Z"}`, false},
		"finalizers":                                                      {`{"finalizers":["a"]}`, false},
		"a label that is a number":                                        {`{"labels":{"a":1}}`, false},
		"an owner that is not an object":                                  {`{"ownerReferences":["a"]}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			if _, plain := plainMetadata([]byte(tc.metadata)); plain != tc.plain {
				t.Errorf("read plainly %v, want %v", plain, tc.plain)
			}
			checkSameMetadata(t, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":`+tc.metadata+`,"spec":{}}`))
		})
	}
}

func TestTwoMetadataMembersAreRefused(t *testing.T) {
	canary := `{"labels":{"pod-template-hash":"new"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a-new","uid":"u","controller":true}]}`
	for name, raw := range map[string]string{
		"repeated":               `{"metadata":` + canary + `,"metadata":null}`,
		"spelled with an escape": `{"metadata":` + canary + `,"metad\u0061ta":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			h, obs, _ := handler(t, fixture("gray"))
			resp := h.Handle(t.Context(), admissionOf([]byte(raw), false))
			if resp.Allowed || len(resp.Patch) != 0 || resp.Result == nil || resp.Result.Code != 400 ||
				!strings.Contains(resp.Result.Message, "2 metadata members") {
				t.Errorf("allowed %v, patch %q, result %+v: want a bad request naming the two metadata members", resp.Allowed, resp.Patch, resp.Result)
			}
			if obs.outcomes[OutcomeError] != 1 {
				t.Errorf("outcomes %v, want one error", obs.outcomes)
			}
		})
	}
	// One metadata member, whatever "Metadata" or "spec.metadata" say: stamped as usual.
	h, _, _ := handler(t, fixture("gray"))
	resp := h.Handle(t.Context(), admissionOf([]byte(`{"Metadata":{},"spec":{"metadata":{}},"metadata":`+canary+`}`), false))
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Errorf("allowed %v, patch %q: want the canary stamped", resp.Allowed, resp.Patch)
	}
}

// TestStringSpecialMatchesBytewise checks stringSpecial against the byte-by-byte test on every
// byte value at every position of a word, and on random words.
func TestStringSpecialMatchesBytewise(t *testing.T) {
	bytewise := func(w [8]byte) bool {
		for _, c := range w {
			if c == '"' || c == '\\' || c < 0x20 {
				return true
			}
		}
		return false
	}
	check := func(w [8]byte) {
		if got, want := stringSpecial(binary.LittleEndian.Uint64(w[:])), bytewise(w); got != want {
			t.Errorf("stringSpecial(%q) = %v, want %v", w, got, want)
		}
	}
	for _, filler := range []byte{'a', 0x20, 0x7f, 0x80, 0xff, '"' + 1, '\\' + 1, '"' - 1, '\\' - 1} {
		for pos := range 8 {
			for c := range 256 {
				var w [8]byte
				for i := range w {
					w[i] = filler
				}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		check(w)
	}
}
