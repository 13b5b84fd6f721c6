# Shared by scripts/k8s/*: sourced, not run.
# shellcheck shell=bash
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

K8S_VERSION=v1.37.2     # scripts/k8s/kubernetes/go.mod
HELM_VERSION=v3.22.0    # scripts/k8s/helm/go.mod
COREDNS_VERSION=1.15.0  # scripts/k8s/coredns/go.mod
METRICS_SERVER_VERSION=v0.8.0  # scripts/k8s/metrics-server/go.mod
PAUSE_TAG=1
# Local image names: no registry serves them; the cluster gets them imported.
IMAGE_REPO=localhost/dapr-wasi
DAPR_IMAGE_REPO=localhost/dapr
APP_TAG=0.1.0
IMAGES="$CACHE/images"
# The tools, outside the clone: Kubernetes takes ~9 minutes to build cold.
K8S_BIN="${XDG_CACHE_HOME:-${HOME:-$ROOT}/.cache}/wasm-dapr-k8s/bin"
# The test cluster's network namespace and cgroup (scripts/k8s/cluster).
K8S_NETNS=dapr-wasi-k8s
K8S_CGROUP=dapr-wasi-k8s
# Source addresses the cluster test's clients may use (scripts/k8s/cluster).
CLIENT_NET=10.80.0.1/14

# The test cluster's tools and the application in it.
NS=dapr-wasi                      # the application's namespace
K="$DATA/k8s"                     # the cluster's state (scripts/k8s/cluster)
k() { "$ROOT/scripts/k8s/cluster" kubectl "$@"; }
helm() { "$ROOT/scripts/k8s/cluster" exec "$K8S_BIN/helm" --kubeconfig "$K/admin.kubeconfig" "$@"; }
in_ns() { "$ROOT/scripts/k8s/cluster" exec "$@"; }
# The rate limit tests/k8s/values.yaml sets (requests per window).
rate_limit_max() { awk '/^  max:/ { print $2 }' "$ROOT/tests/k8s/values.yaml"; }
# The port wasm-host serves metrics and probes on (the chart's annotation).
metrics_port() {
  k -n "$NS" get pods -l app.kubernetes.io/name=image-api-grayscale \
    -o jsonpath='{.items[0].metadata.annotations.prometheus\.io/port}'
}

# Test results: ok/fail print a line; check WHAT CMD... runs CMD.
FAILED=0
ok()   { printf '  \033[32mok\033[0m   %s\n' "$*"; }
fail() { printf '  \033[31mFAIL\033[0m %s\n' "$*"; FAILED=1; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
