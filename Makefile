# Kruise Lanes — the single entry point for building and testing. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
CACHE_DIR := $(CURDIR)/.cache
BIN_DIR := $(CURDIR)/bin
TOOLS_BIN := $(CACHE_DIR)/bin
export GOFLAGS ?= -buildvcs=false

.DEFAULT_GOAL := help

help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build lanes-manager and kubectl-lanes into ./bin.
	$(GO) build -o $(BIN_DIR)/ ./cmd/...

unit: ## Run the unit and golden tests (fast, no cluster).
	$(GO) vet ./...
	$(GO) test ./...

tools: ## Build the real control plane (etcd, kube-apiserver, kwok, Kruise, helm) into .cache/bin once.
	bash test/tools/build.sh $(TOOLS_BIN)

e2e: tools ## Run the end-to-end suite against a real API server and the real Kruise controller.
	KUBEBUILDER_ASSETS=$(TOOLS_BIN) LANES_TOOLS_BIN=$(TOOLS_BIN) $(GO) test -tags e2e -count=1 -timeout 40m -v ./test/e2e/...

test: unit e2e ## The README's test command: unit, golden and e2e tests.

.PHONY: help build unit tools e2e test
