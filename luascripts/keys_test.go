package luascripts

import "testing"

func TestKeys(t *testing.T) {
	if got, want := IngressKey("mse"), "lua.traffic.routing.ingress.mse"; got != want {
		t.Errorf("IngressKey(mse) = %q, want %q", got, want)
	}
	if got, want := CustomNetworkKey("HTTPRoute", "gateway.networking.k8s.io"), "lua.traffic.routing.HTTPRoute.gateway.networking.k8s.io"; got != want {
		t.Errorf("CustomNetworkKey = %q, want %q", got, want)
	}
	for key, want := range map[string]string{IngressKey("lanes-mse"): "lanes-mse", "lua.traffic.routing.ingress.": "", CustomNetworkKey("HTTPRoute", "gateway.networking.k8s.io"): "", "note": ""} {
		got, ok := IngressClassOfKey(key)
		if got != want || ok != (want != "") {
			t.Errorf("IngressClassOfKey(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
}
