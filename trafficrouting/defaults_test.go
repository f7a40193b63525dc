package trafficrouting

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultsConfigMapRoundTrip(t *testing.T) {
	want := Defaults{LaneHeader: "x-lane", Dialects: []Dialect{DialectASM, DialectLanes}, BaseLabels: true}
	got, err := DefaultsFromConfigMapData(want.ConfigMapData())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDefaultsFromConfigMapDataRefusesMalformed(t *testing.T) {
	good := DefaultDefaults().ConfigMapData()
	with := func(k, v string) map[string]string {
		out := map[string]string{}
		for kk, vv := range good {
			out[kk] = vv
		}
		if v == "<delete>" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	for name, tc := range map[string]struct {
		data map[string]string
		want string
	}{
		"missing lane header": {with(DefaultsKeyLaneHeader, "<delete>"), "key laneHeader is missing"},
		"bad lane header":     {with(DefaultsKeyLaneHeader, "x lane"), `laneHeader "x lane" is not a valid HTTP header name`},
		"unknown dialect":     {with(DefaultsKeyDialects, "mse,nacos"), `unknown label dialect "nacos"`},
		"no dialect":          {with(DefaultsKeyDialects, ""), "dialects names no dialect"},
		"bad base labels":     {with(DefaultsKeyBaseLabels, "yes"), `baseLabels "yes" is not true or false`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DefaultsFromConfigMapData(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
