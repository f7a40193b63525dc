//go:build tools

// Package tools pins the OpenKruise manager; its package main is the module root.
package tools

import (
	_ "github.com/openkruise/kruise"
)
