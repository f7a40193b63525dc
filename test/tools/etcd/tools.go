//go:build tools

// Package tools pins etcd; its package main is the root of go.etcd.io/etcd/server/v3.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
