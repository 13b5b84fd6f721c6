#!/usr/bin/env bash
# scripts/new-service end to end, run by scripts/test with its own stack
# stopped: bad names are refused with exit 2; a blank service and a copy of
# grayscale (--from grayscale) build, pass clippy and their unit tests; on a
# stack with both, the blank one answers on its own port and through Dapr
# invocation from web's sidecar (the access-control entry it added), the
# copy converts a photo (the state-store scope it added); and --remove
# restores the tree byte for byte.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
NAME=scaffold-check GRAY=scaffold-gray
fail() { printf '\033[1;31mFAIL:\033[0m %s\n' "$*" >&2; exit 1; }
BEFORE=$(git status --porcelain=v1 --untracked-files=all; git diff | sha256sum)
STACK= BROKER=
cleanup() {
  [[ -z $STACK ]] || { kill -TERM "$STACK" 2>/dev/null || true; wait "$STACK" 2>/dev/null || true; }
  [[ -z $BROKER ]] || scripts/broker stop >/dev/null 2>&1 || true
  for n in "$NAME" "$GRAY"; do
    [[ ! -d $n ]] || scripts/new-service --remove "$n" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

for bad in Bad_Name a--b -x web 9lives "$(printf 'x%.0s' {1..41})"; do
  set +e; scripts/new-service "$bad" >/dev/null 2>&1; rc=$?; set -e
  (( rc == 2 )) || fail "new-service '$bad' exited $rc, not 2"
done
echo "ok: bad names refused with exit 2"

scripts/new-service "$NAME"
scripts/new-service "$NAME" >/dev/null 2>&1 && fail "a second new-service $NAME overwrote it"
scripts/new-service "$GRAY" --from grayscale
cargo clippy --locked -p "$NAME" -p "$GRAY" --all-targets -- -D warnings
cargo clippy --locked --release --target wasm32-wasip2 -p "$NAME" -p "$GRAY" --all-targets -- -D warnings
cargo test --locked -p "$NAME" -p "$GRAY"
echo "ok: both build, pass clippy, their unit tests run"

scripts/build >/dev/null
# Every sidecar of an image service loads the pub/sub component: the broker
# must run (scripts/test stopped it with its own stack).
scripts/broker status >/dev/null 2>&1 || { scripts/broker start; BROKER=1; }
PORT=$(app_port "$NAME")
target/release/stack run >"$LOGS/stack-scaffold.log" 2>&1 &
STACK=$!
target/release/stack wait 120 >/dev/null || { tail -20 "$LOGS/stack-scaffold.log"; fail "the stack with $NAME did not come up"; }
got=$(curl -sf "http://127.0.0.1:$PORT/$NAME?who=Ada") || fail "no answer on :$PORT"
[[ $got == *'"message":"Hello, Ada!"'* ]] || fail "own port answered $got"
got=$(curl -sf -H "dapr-api-token: $(cat "$DATA/tokens/web/dapr-api-token")" \
  "http://127.0.0.1:3500/v1.0/invoke/$NAME/method/$NAME?who=Grace") || fail "no answer through web's sidecar"
[[ $got == *'"message":"Hello, Grace!"'* ]] || fail "through Dapr: $got"
echo "ok: it answers on :$PORT and through Dapr invocation from web"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @docs/samples/rocket.png \
  -H 'Accept: image/png' "http://127.0.0.1:$(app_port "$GRAY")/grayscale")
[[ $code == 200 ]] || fail "the grayscale copy answered $code"
echo "ok: the grayscale copy converts a photo"
kill -TERM "$STACK"; wait "$STACK" || true; STACK=

scripts/new-service --remove "$NAME"
scripts/new-service --remove "$GRAY"
AFTER=$(git status --porcelain=v1 --untracked-files=all; git diff | sha256sum)
[[ $BEFORE == "$AFTER" ]] || { git status --short; fail "--remove did not restore the tree"; }
echo "ok: --remove restored the tree byte for byte"
