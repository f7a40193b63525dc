# Kruise Lanes — the single entry point for building and testing. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
CACHE_DIR := $(CURDIR)/.cache
BIN_DIR := $(CURDIR)/bin
TOOLS_BIN := $(CACHE_DIR)/bin
GOLANGCI_LINT := $(TOOLS_BIN)/golangci-lint
export GOFLAGS ?= -buildvcs=false
# VERSION has one source, the chart's appVersion: the binaries, the image tag and the chart agree.
VERSION := v$(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/lanes/Chart.yaml)
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
VERSION_PKG := github.com/kruise-lanes/kruise-lanes/cmd/internal/version
LDFLAGS := -s -w -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT)
# The image the chart runs by default: manager.image.repository, tagged with the appVersion.
IMAGE := $(shell sed -n 's/^    repository: *//p' charts/lanes/values.yaml | head -1):$(patsubst v%,%,$(VERSION))
IMAGE_TAR := $(BIN_DIR)/lanes-manager-image.tar
# `make dist` writes the kubectl-lanes release into DIST_DIR: an archive per DIST_PLATFORMS entry,
# checksums.txt, the krew manifest lanes.yaml (each platform's uri is $(DIST_URL_BASE)/<archive>:
# set it to where the archives will be published) and the chart package.
DIST_DIR := $(CURDIR)/dist
DIST_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST_URL_BASE ?= file://$(DIST_DIR)
HELM ?= $(TOOLS_BIN)/helm
# DEMO_TOOLS are the tool groups `make demo` runs (test/tools/build.sh builds only those).
DEMO_TOOLS := etcd kruise kube kwok traefik istio
# CONTROLLER_GEN_ARGS generate api/'s deepcopy functions and its CRDs into the chart's crds/; the
# test in api/v1alpha1 runs the same arguments to catch stale files.
CONTROLLER_GEN_ARGS := object crd paths=./api/... output:crd:artifacts:config=charts/lanes/crds

.DEFAULT_GOAL := help

help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

demo: ## The seed 002 lane A -> B -> C on a local control plane with Kruise, Traefik and istiod: release, approve, roll back, with real requests.
	bash test/tools/build.sh $(TOOLS_BIN) $(DEMO_TOOLS)
	LANES_TOOLS_BIN=$(TOOLS_BIN) $(GO) run -tags e2e ./test/demo

render-demo: ## Show the seed 002 lane's canary Ingress as Kruise will write it (offline, no cluster).
	$(GO) run ./cmd/kubectl-lanes render -f examples/mse/lane.yaml -f examples/mse/ingress.yaml -f examples/mse/app.yaml

build: ## Build lanes-manager and kubectl-lanes into ./bin, stamped with VERSION and COMMIT.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/ ./cmd/lanes-manager ./cmd/kubectl-lanes

image: ## Build the lanes-manager image as a tarball (no container engine needed) and check it: config, and the binary inside, run.
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/image/lanes-manager ./cmd/lanes-manager
	cd test/tools/image && GOWORK=off $(GO) test -count=1 ./ && \
		GOWORK=off $(GO) run . build -binary $(BIN_DIR)/image/lanes-manager -ref $(IMAGE) -version $(VERSION) -revision $(COMMIT) -platform linux/$$($(GO) env GOARCH) -out $(IMAGE_TAR) && \
		GOWORK=off $(GO) run . verify -image $(IMAGE_TAR) -ref $(IMAGE) -version $(VERSION)

dist: $(HELM) ## Release kubectl-lanes into ./dist: static archives for linux and darwin (amd64, arm64), checksums.txt, the krew manifest lanes.yaml (checked by a test), and the chart package.
	rm -rf $(DIST_DIR) $(BIN_DIR)/dist && mkdir -p $(DIST_DIR)
	for p in $(DIST_PLATFORMS); do \
		os=$${p%/*} arch=$${p#*/}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN_DIR)/dist/$$os-$$arch/kubectl-lanes ./cmd/kubectl-lanes || exit 1; \
		(cd test/tools/dist && GOWORK=off $(GO) run . archive -binary $(BIN_DIR)/dist/$$os-$$arch/kubectl-lanes -license $(CURDIR)/LICENSE \
			-out $(DIST_DIR)/kubectl-lanes_$(VERSION)_$${os}_$$arch.tar.gz) || exit 1; \
	done
	$(HELM) package charts/lanes -d $(DIST_DIR)
	cd test/tools/dist && GOWORK=off $(GO) run . manifest -dir $(DIST_DIR) -version $(VERSION) -platforms '$(DIST_PLATFORMS)' -url-base '$(DIST_URL_BASE)' && \
		LANES_DIST_DIR=$(DIST_DIR) LANES_DIST_VERSION=$(VERSION) LANES_DIST_PLATFORMS='$(DIST_PLATFORMS)' GOWORK=off $(GO) test -count=1 -v ./

$(TOOLS_BIN)/helm:
	bash test/tools/build.sh $(TOOLS_BIN) helm

unit: lint ## Run the unit, golden and fuzz-seed tests (fast, no cluster).
	$(GO) test -count=1 ./...

lint: ## gofmt, go vet and golangci-lint (.golangci.yml), tests included (e2e tag too), and the image tool module.
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "not gofmt'd: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/... ./test/demo/... ./test/bench/...
	bash test/tools/build.sh $(TOOLS_BIN) golangci-lint
	$(GOLANGCI_LINT) run ./...
	cd test/tools/image && GOWORK=off $(GO) vet ./... && GOWORK=off $(GOLANGCI_LINT) run --config $(CURDIR)/.golangci.yml ./...

generate: ## Regenerate the API's deepcopy functions and CRDs (controller-gen), the provider scripts from luascripts/*/lib, the golden expectations, and the chart's values.schema.json and README values table from values.yaml.
	bash test/tools/build.sh $(TOOLS_BIN) controller-gen
	$(TOOLS_BIN)/controller-gen $(CONTROLLER_GEN_ARGS)
	$(GO) test ./luascripts/ -run TestProviderScriptsAreGenerated -update
	$(GO) test ./plugin/ -run 'TestIngressGoldenCases|TestCustomNetworkGoldenCases' -update
	cd test/tools/chartdocs && GOWORK=off $(GO) run . -chart $(CURDIR)/charts/lanes -readme $(CURDIR)/README.md

bench: ## Benchmarks: our mse.lua against Kruise's (plugin); admission p50/p99, and cache heap at 10,000 and 100,000 pods before and after trimming (webhook).
	$(GO) test -run XXX -bench . -benchmem -count 5 ./plugin/ ./webhook/

fuzz: ## Fuzz the provider scripts' input, the pod webhook's (arbitrary pod JSON) and its patch encoding for 60 s each.
	$(GO) test -run XXX -fuzz FuzzIngressScripts -fuzztime 60s ./plugin/
	$(GO) test -run XXX -fuzz FuzzPodLabeler -fuzztime 60s ./webhook/
	$(GO) test -run XXX -fuzz FuzzMetadataPatch -fuzztime 60s ./webhook/

chart-test: tools ## Lint the Helm chart, compare its rendering with golden files, check its schema and the README values table (and that both are generated from values.yaml); check the generated API files are current and run the analysis core against the real Prometheus.
	LANES_TOOLS_BIN=$(TOOLS_BIN) LANES_REQUIRE_HELM=1 LANES_REQUIRE_TOOLS=1 $(GO) test -count=1 -v ./test/chart/ ./api/... ./analysis/
	cd test/tools/chartdocs && GOWORK=off $(GO) test -count=1 ./

tools: ## Build the real control plane (etcd, kube-apiserver, kwok, Kruise, OpenKruise, helm), data planes (Traefik, istiod), Prometheus, controller-gen and golangci-lint into .cache/bin once.
	bash test/tools/build.sh $(TOOLS_BIN)

bench-routes: tools ## Lane route latency (Ready -> route, not Ready -> removed) at 500 member Services, Istio and Gateway API (real API server, ~10 min).
	KUBEBUILDER_ASSETS=$(TOOLS_BIN) LANES_TOOLS_BIN=$(TOOLS_BIN) $(GO) test -tags e2e -count=1 -timeout 150m -run XXX -bench BenchmarkLaneRoute -benchtime 1x -v ./test/bench/

e2e: tools ## Run the end-to-end suite against a real API server and the real Kruise controller.
	KUBEBUILDER_ASSETS=$(TOOLS_BIN) LANES_TOOLS_BIN=$(TOOLS_BIN) $(GO) test -tags e2e -count=1 -timeout 40m -v ./test/e2e/...

test: unit chart-test image dist e2e ## The README's test command: unit, golden and e2e tests.

.PHONY: help demo render-demo build image dist unit lint generate bench bench-routes fuzz chart-test tools e2e test
