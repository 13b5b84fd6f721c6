# Shared helpers for scripts/*: sourced, not run.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"          # tools we install (wasm-host, daprd, dapr CLI)
DATA="$ROOT/.data"            # databases and generated secrets
LOGS="$ROOT/.logs"            # logs of processes our scripts start
# Once, even when scripts source this from scripts: a PATH or
# LD_LIBRARY_PATH that grows changes build scripts' environment, and cargo
# then rebuilds crates (wasmtime's dependencies among them) for nothing.
case ":$PATH:" in *":$CACHE/bin:"*) ;; *) export PATH="$CACHE/bin:$PATH" ;; esac
# dapr CLI looks for daprd in $DAPR_RUNTIME_PATH/.dapr/bin.
export DAPR_RUNTIME_PATH="$CACHE/dapr-runtime"
# daprd exits on a loopback-only host unless told which address to use.
export DAPR_HOST_IP="${DAPR_HOST_IP:-127.0.0.1}"
# wasm-host's wasi-nn backend loads OpenVINO from the wheel's libraries.
case ":${LD_LIBRARY_PATH:-}:" in
  *":$CACHE/openvino-libs:"*) ;;
  *) export LD_LIBRARY_PATH="$CACHE/openvino-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
esac
# Ports and versions, pinned.
# Exported: events-service's service.toml grants a socket to 127.0.0.1:$DB_PORT.
export DB_PORT="${DB_PORT:-3306}"
# The pub/sub broker (scripts/broker); not 6379, so a system Redis can stay.
BROKER_PORT="${BROKER_PORT:-6381}"
# Zipkin (scripts/tracing); config/config.yaml names the same port.
ZIPKIN_PORT=9411
DAPRD_VERSION=1.18.3
DAPR_CLI_VERSION=1.12.0

# host_target: wasm-host's cargo target folder. host/ is its own workspace:
# wasmtime takes ~10 minutes to build cold on 2 cores, so its target folder
# lives in a cache outside the clone, keyed by host/Cargo.lock and the
# compiler, and survives fresh clones.
host_target() {
  local key; key=$(cat "$ROOT/host/Cargo.lock" <(rustc -vV) | sha256sum | cut -c1-16)
  echo "${XDG_CACHE_HOME:-${HOME:-$ROOT}/.cache}/wasm-dapr-host/$key"
}

# app_ids: the apps, one per line, from dapr.yaml, the one list of services
# (each is also the Cargo package of its component). Needs target/release/stack.
app_ids() { "$ROOT/target/release/stack" -f "$ROOT/dapr.yaml" apps; }

# app_port APP: the appPort of APP in dapr.yaml (read by the supervisor's
# own parser).
app_port() { "$ROOT/target/release/stack" -f "$ROOT/dapr.yaml" port "$1"; }

# Progress goes to fd PROGRESS_FD when a set-up lane (below) set it, else stderr.
log()  { printf '\033[1;34m==>\033[0m %s\n' "$*" >&"${PROGRESS_FD:-2}"; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# need CMD [HINT]: fail with a hint when CMD is missing.
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found${2:+: $2}"; }

# wait_for URL [SECONDS] [WHAT]: poll until URL answers (any HTTP status).
wait_for() {
  local url=$1 timeout=${2:-60} what=${3:-$1} start=$SECONDS
  until curl -s -o /dev/null --max-time 2 "$url"; do
    (( SECONDS - start < timeout )) || die "$what did not come up within ${timeout}s"
    sleep 0.2
  done
}

# wait_for_port PORT [SECONDS] [WHAT]: poll until something listens on 127.0.0.1:PORT.
wait_for_port() {
  local port=$1 timeout=${2:-60} what=${3:-port $1} start=$SECONDS
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    (( SECONDS - start < timeout )) || die "$what did not come up within ${timeout}s"
    sleep 0.2
  done
}

# as_root CMD...: run as root (directly, or through sudo).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else need sudo "install the packages as root"; sudo "$@"; fi
}

# timed WHAT CMD...: run CMD, say how long it took. Inside a set-up lane,
# also say every minute that it is still going.
timed() {
  local what=$1 start=$SECONDS tick= rc=0; shift
  log "$what"
  if [[ -n ${PROGRESS_FD:-} ]]; then
    ( while sleep 60; do log "$what: $((SECONDS - start))s so far"; done ) & tick=$!
  fi
  "$@" || rc=$?
  [[ -z $tick ]] || { kill "$tick" 2>/dev/null; wait "$tick" 2>/dev/null || true; }
  (( rc == 0 )) || return "$rc"
  log "$what: done in $((SECONDS - start))s"
}

# lane NAME CMD...: run CMD in the background, in a process group of its own
# (recorded, so a signal stops all of it), as set-up lane NAME: its output
# goes to .logs/setup-NAME.log, only its log lines to the terminal.
# wait_lanes: wait for every lane; show the end of the log of any that failed.
LANE_PIDS=()
LANE_NAMES=()
lane() {
  local name=$1; shift
  mkdir -p "$LOGS"
  [[ ${#LANE_PIDS[@]} -gt 0 ]] || trap stop_lanes INT TERM HUP
  set -m
  ( exec {PROGRESS_FD}>&2; export PROGRESS_FD; "$@" >"$LOGS/setup-$name.log" 2>&1 ) &
  set +m
  LANE_PIDS+=("$!")
  LANE_NAMES+=("$name")
}
stop_lanes() {
  local p
  for p in "${LANE_PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  exit 130
}
wait_lanes() {
  local i failed=()
  for i in "${!LANE_PIDS[@]}"; do
    wait "${LANE_PIDS[$i]}" || failed+=("${LANE_NAMES[$i]}")
  done
  LANE_PIDS=() LANE_NAMES=()
  trap - INT TERM HUP
  for i in "${failed[@]}"; do
    warn "set-up lane '$i' failed; the end of .logs/setup-$i.log:"
    tail -n 30 "$LOGS/setup-$i.log" >&2
  done
  (( ${#failed[@]} == 0 )) || die "set-up failed (lanes: ${failed[*]})"
}
