//go:build tools

// Package tools pins istiod; build.sh builds istio.io/istio/pilot/cmd/pilot-discovery from this module.
package tools

import _ "istio.io/istio/pilot/cmd/pilot-discovery"
