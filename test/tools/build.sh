#!/usr/bin/env bash
# build.sh OUTDIR [GROUP...] — builds the e2e control plane and data planes from the pinned tool
# modules beside this script and stages the Kruise Rollouts manager's run-time files. Called by
# `make tools` with OUTDIR=.cache/bin and no group (all of them); `make demo` names only the groups
# the demo runs; `make lint` names golangci-lint. Groups: etcd kruise kruise-apps kube kwok helm
# traefik istio prometheus controller-gen golangci-lint.
#
# Each tool group is rebuilt only when one of its binaries is missing or its stamp changed. The
# stamp is a hash of the group's go.mod and go.sum, the Go version, the link flags and the build
# tags (BUILD_TAGS, set for one call of build), so bumping a pin (or the toolchain) rebuilds exactly
# that group. Builds run one group at a time with -p 2: the
# machine has two cores and the Kubernetes link step alone needs most of the memory headroom.
set -euo pipefail

if [[ $# -lt 1 ]]; then
	echo "usage: $0 OUTDIR [GROUP...]" >&2
	exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
shift
all_groups=(etcd kruise kruise-apps kube kwok helm traefik istio prometheus controller-gen golangci-lint)
groups=("$@")
[[ ${#groups[@]} -eq 0 ]] && groups=("${all_groups[@]}")
for g in "${groups[@]}"; do
	[[ " ${all_groups[*]} " == *" $g "* ]] || { echo "unknown tool group $g (known: ${all_groups[*]})" >&2; exit 2; }
done
# wanted GROUP — succeeds when GROUP was asked for.
wanted() { [[ " ${groups[*]} " == *" $1 "* ]]; }
stamps="$out/.stamps"
mkdir -p "$stamps"

# The e2e harness sets up its test network with iproute2's `ip` (test/e2e/framework/netns.go);
# `make lint`, which asks for the linter alone, does not need it.
if [[ "${groups[*]}" != golangci-lint ]] && ! command -v ip >/dev/null 2>&1; then
	echo "installing iproute2 (the e2e harness's test network needs ip)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOWORK=off
export CGO_ENABLED=0

kube_version=v1.34.2
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=34"
	kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# stamp_of DIR LDFLAGS — prints the build stamp of the tool module in DIR.
stamp_of() {
	{
		cat "$here/$1/go.mod" "$here/$1/go.sum"
		go version
		printf '%s\n' "$2"
		if [[ -n "${BUILD_TAGS:-}" ]]; then printf 'tags=%s\n' "$BUILD_TAGS"; fi
	} | sha256sum | cut -d' ' -f1
}

# build GROUP LDFLAGS NAME=PKG... — builds each PKG of the tool module in test/tools/GROUP into
# $out/NAME (a package main at a module root would otherwise be named after the module's last
# path element, such as "v3"), with the build tags in BUILD_TAGS if set.
build() {
	local group=$1 ldflags=$2
	shift 2
	local want have="" missing=0 spec start
	want="$(stamp_of "$group" "$ldflags")"
	[[ -f "$stamps/$group" ]] && have="$(cat "$stamps/$group")"
	for spec in "$@"; do
		[[ -x "$out/${spec%%=*}" ]] || missing=1
	done
	if [[ $missing -eq 0 && "$want" == "$have" ]]; then
		printf '%-8s up to date\n' "$group"
		return
	fi
	rm -f "$stamps/$group"
	start=$SECONDS
	for spec in "$@"; do
		(cd "$here/$group" && go build -p 2 -trimpath -tags="${BUILD_TAGS:-}" -ldflags="$ldflags" -o "$out/${spec%%=*}" "${spec#*=}")
	done
	echo "$want" >"$stamps/$group"
	printf '%-8s built %s in %ds\n' "$group" "${*%%=*}" $((SECONDS - start))
}

# module_dir GROUP MODULE — prints the module-cache folder of MODULE as pinned by test/tools/GROUP.
module_dir() {
	(cd "$here/$1" && go mod download -json "$2") | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# stage_kruise — copies out of the read-only module cache what the Kruise manager reads at run time:
# lua_configuration/ (resolved relative to its working directory), its CRDs, and its webhook
# configurations renamed to the names the manager patches (the kustomize prefix is not applied),
# beside the kustomize patch that gives those webhooks their objectSelectors (the harness merges it).
# Bump layout when what is staged changes.
stage_kruise() {
	local src dst="$out/kruise-rollouts" layout=2
	src="$(module_dir kruise github.com/openkruise/rollouts)"
	if [[ -z "$src" ]]; then
		echo "cannot locate github.com/openkruise/rollouts in the module cache" >&2
		exit 1
	fi
	if [[ -f "$dst/.source" && "$(cat "$dst/.source")" == "$src layout=$layout" ]]; then
		printf '%-8s staged files up to date\n' kruise
		return
	fi
	rm -rf "$dst"
	mkdir -p "$dst/crds" "$dst/webhook"
	cp -R "$src/lua_configuration" "$dst/lua_configuration"
	cp "$src"/config/crd/bases/*.yaml "$dst/crds/"
	sed -e 's/^  name: mutating-webhook-configuration$/  name: kruise-rollout-mutating-webhook-configuration/' \
		-e 's/^  name: validating-webhook-configuration$/  name: kruise-rollout-validating-webhook-configuration/' \
		"$src/config/webhook/manifests.yaml" >"$dst/webhook/manifests.yaml"
	cp "$src/config/webhook/patch_manifests.yaml" "$dst/webhook/patch_manifests.yaml"
	chmod -R u+w "$dst"
	grep -q 'name: kruise-rollout-mutating-webhook-configuration' "$dst/webhook/manifests.yaml"
	grep -q 'name: kruise-rollout-validating-webhook-configuration' "$dst/webhook/manifests.yaml"
	echo "$src layout=$layout" >"$dst/.source"
	printf '%-8s staged lua_configuration, CRDs and webhook manifests from %s\n' kruise "$src"
}

total=$SECONDS
wanted etcd && build etcd "-s -w" etcd=go.etcd.io/etcd/server/v3
if wanted kruise; then
	build kruise "-s -w" kruise-rollouts-manager=github.com/openkruise/rollouts
	stage_kruise
fi
wanted kruise-apps && build kruise-apps "-s -w" kruise-manager=github.com/openkruise/kruise
wanted kube && build kube "$kube_ldflags" kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
	kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
	kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
	kubectl=k8s.io/kubernetes/cmd/kubectl
wanted kwok && build kwok "-s -w" kwok=sigs.k8s.io/kwok/cmd/kwok
wanted helm && build helm "-s -w" helm=helm.sh/helm/v3/cmd/helm
# The data planes of the traffic scenarios. Traefik's link step is the largest of all (a 184 MB
# binary); istiod's pilot-discovery the second.
wanted traefik && build traefik "-s -w" traefik=github.com/traefik/traefik/v3/cmd/traefik
wanted istio && build istio "-s -w" pilot-discovery=istio.io/istio/pilot/cmd/pilot-discovery
# The lane analysis scenarios' metrics store (issue 14). remove_all_sd leaves only the static,
# file and HTTP service discovery: the harness writes the scrape targets itself, and the cloud SDKs
# would triple the build. The -X flags give `prometheus --version` the module's version.
prom_ldflags="-s -w"
for kv in Version=3.16.0 Revision=v0.316.0 Branch=HEAD BuildUser=kruise-lanes BuildDate=19700101-00:00:00; do
	prom_ldflags+=" -X github.com/prometheus/common/version.$kv"
done
wanted prometheus && BUILD_TAGS=remove_all_sd build prometheus "$prom_ldflags" prometheus=github.com/prometheus/prometheus/cmd/prometheus
# Generates the LaneAnalysis deepcopy functions and CRD (`make generate`).
wanted controller-gen && build controller-gen "-s -w" controller-gen=sigs.k8s.io/controller-tools/cmd/controller-gen
# The linter `make lint` runs. Its version is stamped from the pin (golangci-lint would otherwise
# report the tools module's "(devel)"); a fixed date keeps the build reproducible.
if wanted golangci-lint; then
	lint_version="$(sed -n 's|^require github.com/golangci/golangci-lint/v2 v||p' "$here/golangci-lint/go.mod")"
	[[ -n "$lint_version" ]] || { echo "cannot read the golangci-lint pin from $here/golangci-lint/go.mod" >&2; exit 1; }
	build golangci-lint "-s -w -X main.version=$lint_version -X main.commit=module -X main.date=1970-01-01T00:00:00Z" \
		golangci-lint=github.com/golangci/golangci-lint/v2/cmd/golangci-lint
fi
printf 'tools ready in %s (%ds)\n' "$out" $((SECONDS - total))
