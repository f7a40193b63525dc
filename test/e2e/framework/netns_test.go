//go:build e2e

package framework

import (
	"net/netip"
	"strings"
	"testing"
)

// TestCheckRoute: only routes to lo, for loopback and the pod range (and their broadcast and
// multicast forms), pass; anything that could lead off the machine fails.
func TestCheckRoute(t *testing.T) {
	pods := netip.MustParsePrefix(PodCIDR)
	allowed := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), pods, netip.MustParsePrefix("ff00::/8"), netip.MustParsePrefix("fe80::/64")}
	tests := map[string]string{ // route line -> the error it must mention ("" = accepted)
		"local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1": "",
		"local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1":   "",
		"broadcast 127.255.255.255 dev lo table local proto kernel scope link":       "",
		"local 10.244.0.0/16 dev lo table local scope host":                          "",
		"::1 dev lo proto kernel metric 256 pref medium":                             "",
		"local ::1 dev lo table local proto kernel metric 0 pref medium":             "",
		"multicast ff00::/8 dev lo table local proto kernel metric 256 pref medium":  "",
		"default via 192.168.1.1 dev eth0 proto dhcp":                                "does not go to lo",
		"default dev lo scope link":                                                  "default route",
		"10.0.0.0/8 dev lo scope link":                                               "leads outside",
		"local 10.245.0.1 dev lo table local":                                        "leads outside",
		"10.244.0.0/16 dev veth0 scope link":                                         "does not go to lo",
		"blackhole":                                                                  "does not go to lo",
	}
	for line, want := range tests {
		err := checkRoute(line, allowed, pods)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q refused: %v", line, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want one mentioning %q", line, err, want)
		}
	}
}

// TestExpandEnv: $(VAR) of an earlier variable is replaced, as the kubelet does; $$ is a $, and
// an unknown or unterminated reference stays as it is.
func TestExpandEnv(t *testing.T) {
	vars := map[string]string{"POD_IP": "10.244.0.7", "NS": "shop"}
	for in, want := range map[string]string{
		"$(POD_IP):20001":      "10.244.0.7:20001",
		"xds:///b.$(NS).svc:1": "xds:///b.shop.svc:1",
		"$$(POD_IP)":           "$(POD_IP)",
		"$(NOPE)-x":            "$(NOPE)-x",
		"cost $5":              "cost $5",
		"open $(POD_IP":        "open $(POD_IP",
		"$(POD_IP)$(NS)":       "10.244.0.7shop",
		"plain":                "plain",
	} {
		if got := expandEnv(in, vars); got != want {
			t.Errorf("expandEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFormatDownwardMap: the kubelet's downward API file format, sorted and quoted.
func TestFormatDownwardMap(t *testing.T) {
	got := formatDownwardMap(map[string]string{"b": `say "hi"`, "a": "x\ny"})
	if want := "a=\"x\\ny\"\nb=\"say \\\"hi\\\"\""; got != want {
		t.Errorf("formatDownwardMap = %q, want %q", got, want)
	}
}
