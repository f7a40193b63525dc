//go:build tools

// Package tools pins Traefik v3; build.sh builds github.com/traefik/traefik/v3/cmd/traefik from this module.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
