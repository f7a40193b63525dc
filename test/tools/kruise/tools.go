//go:build tools

// Package tools pins the Kruise Rollouts manager; its package main is the module root.
package tools

import (
	_ "github.com/openkruise/rollouts"
)
