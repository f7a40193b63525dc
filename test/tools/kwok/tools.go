//go:build tools

// Package tools pins the kwok binary; the harness also reads its stage files from this module.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
