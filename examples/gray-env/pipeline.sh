#!/bin/sh
# The seed 003 pipeline for a gray environment, one stage per call, so a CI system can put its own
# manual gate between them (as the Jenkinsfile in ../jenkins does with `input`):
#
#   pipeline.sh gray      deploy the new images to the gray environment and wait until it serves
#   pipeline.sh verify    send a request through the gray environment (needs GATEWAY)
#   pipeline.sh release   release the gray versions to prod; Kruise then removes the gray environment
#   pipeline.sh rollback  give up: back to the prod versions, gray environment removed
#   pipeline.sh all       gray, verify and release in one go
#
# `kubectl lanes` (kubectl-lanes on PATH) and kubectl must reach the cluster (KUBECONFIG).
# Any failing step stops the pipeline with that command's exit code: for `kubectl lanes wait`,
# 1 means a member failed or was rolled back meanwhile, 2 that it took longer than the timeout.
set -eu

NAMESPACE=${NAMESPACE:-default}                       # namespace of the lane
LANE=${LANE:-gray}                                    # the lane (TrafficRouting) of the gray environment
SERVICES=${SERVICES:-spring-cloud-a,spring-cloud-c}   # services with a new version
CHAIN=${CHAIN:-spring-cloud-a,spring-cloud-b,spring-cloud-c}  # the call chain, for trace
REGISTRY=${REGISTRY:-registry.example.com/gray-demo}
GRAY_TIMEOUT=${GRAY_TIMEOUT:-15m}
RELEASE_TIMEOUT=${RELEASE_TIMEOUT:-30m}
POLL=${POLL:-2s}                                      # how often `kubectl lanes wait` looks
GATEWAY=${GATEWAY:-}                                  # e.g. http://47.96.x.x, for verify

lanes() {
  echo "+ kubectl lanes -n $NAMESPACE $*" >&2
  kubectl lanes -n "$NAMESPACE" "$@"
}

gray() {
  : "${VERSION:?set VERSION to the image tag to release}"
  for svc in $(echo "$SERVICES" | tr ',' ' '); do
    echo "+ kubectl -n $NAMESPACE set image deployment/$svc $svc=$REGISTRY/$svc:$VERSION" >&2
    kubectl -n "$NAMESPACE" set image "deployment/$svc" "$svc=$REGISTRY/$svc:$VERSION"
  done
  # Every changed service is paused at its first step, its gray pod Ready in the lane.
  lanes wait "$LANE" --for=paused --timeout="$GRAY_TIMEOUT" --interval="$POLL"
  lanes status "$LANE"
  lanes trace "$LANE" --chain="$CHAIN"
}

verify() {
  if [ -z "$GATEWAY" ]; then
    echo "verify: GATEWAY is not set, no request sent" >&2
    return 0
  fi
  # The gray environment's entry rule: header group: gray.
  curl -fsS -H 'group: gray' "$GATEWAY/a"
  echo
}

release() {
  lanes approve "$LANE"
  lanes wait "$LANE" --for=completed --timeout="$RELEASE_TIMEOUT" --interval="$POLL"
  # Healthy again: the canary Deployments and the canary Ingress are gone.
  lanes wait "$LANE" --for=healthy --timeout="$GRAY_TIMEOUT" --interval="$POLL"
  lanes status "$LANE"
}

rollback() {
  lanes rollback "$LANE"
  lanes wait "$LANE" --for=healthy --timeout="$GRAY_TIMEOUT" --interval="$POLL"
  lanes status "$LANE"
}

case "${1:-}" in
  gray) gray ;;
  verify) verify ;;
  release) release ;;
  rollback) rollback ;;
  all) gray; verify; release ;;
  *)
    echo "usage: $0 gray|verify|release|rollback|all" >&2
    exit 64
    ;;
esac
