#!/usr/bin/env bash
# Loopback benchmarks of the real `swarmhub` binary (release build).
#
#   node/bench/loopback.sh            # both scenarios
#   ONE_GIB=2 MANY=16 MANY_GIB=1 node/bench/loopback.sh
#   SCENARIOS=tls ONE_GIB=1 node/bench/loopback.sh   # scenario 1, peer TLS on vs off
#
# 1. One hub to one client, ONE_GIB GiB image (default 2): MB/s, and CPU seconds
#    per GB on each side (user+system, from /proc).
# 2. One hub and MANY clients (default 16), MANY_GIB GiB image (default 1): time
#    until all complete, hub bytes up / image size.
# HUB_UPLOAD_RATE (e.g. 100M) caps the hub seeder's upload, as a hub uplink would.
# Peer links are mutual TLS (the default) unless PEER_TLS=off; SCENARIOS=tls runs
# scenario 1 with peer TLS on, then off, alternating ROUNDS times (default 2).
# Figures vary with the machine; record them with the command line used.
set -euo pipefail

ONE_GIB=${ONE_GIB:-2}
MANY=${MANY:-16}
MANY_GIB=${MANY_GIB:-1}
HUB_UPLOAD_RATE=${HUB_UPLOAD_RATE:-unlimited}
PEER_TLS=${PEER_TLS:-on}
SCENARIOS=${SCENARIOS:-all}
ROUNDS=${ROUNDS:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SWARMHUB_BIN:-$TARGET/release/swarmhub}
if [ -z "${SWARMHUB_BIN:-}" ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p swarmhub-node >&2)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarmhub-bench.XXXXXX")
HUB_PID=""
cleanup() {
  [ -n "$HUB_PID" ] && kill "$HUB_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
TICKS=$(getconf CLK_TCK)

cpu_s() { # user+system seconds of a pid so far
  awk -v t="$TICKS" '{ print ($14 + $15) / t }' "/proc/$1/stat"
}

start_hub() { # $1 = image GiB
  local gib=$1
  rm -rf "$WORK/hub" "$WORK/clients"; mkdir -p "$WORK/hub" "$WORK/clients"
  head -c $((gib << 30)) /dev/urandom > "$WORK/image.bin"
  "$BIN" hub --dir "$WORK/hub" image add bench:1 "$WORK/image.bin" >&2
  "$BIN" hub --dir "$WORK/hub" config --peer-tls="$PEER_TLS" >/dev/null 2>&1
  rm -f "$WORK/image.bin"
  "$BIN" hub --dir "$WORK/hub" serve --listen 127.0.0.1:0 --seed-ports 0 --announce-interval 5 --max-upload-rate "$HUB_UPLOAD_RATE" \
    >/dev/null 2>"$WORK/hub.err" &
  HUB_PID=$!
  for _ in $(seq 100); do [ -f "$WORK/hub/run/api.addr" ] && break; sleep 0.1; done
  API="https://$(cat "$WORK/hub/run/api.addr")"
}

login() { # $1 = client name
  local key fp
  key=$("$BIN" hub --dir "$WORK/hub" user add "$1" 2>/dev/null)
  fp=$("$BIN" hub --dir "$WORK/hub" config --all 2>/dev/null | sed -n 's/^Hub CA fingerprint (SHA-256): //p')
  SWARMHUB_HOME="$WORK/clients/$1" "$BIN" login "$API" --key "$key" --fingerprint "$fp" >/dev/null 2>&1
}

stop_hub() {
  kill -TERM "$HUB_PID"; wait "$HUB_PID" || true; HUB_PID=""
}

one_to_one() {
echo "== 1 hub -> 1 client, ${ONE_GIB} GiB image (loopback, release build, peer TLS $PEER_TLS)"
start_hub "$ONE_GIB"
login c0
hub_cpu0=$(cpu_s "$HUB_PID")
start=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$WORK/time.c0" env SWARMHUB_HOME="$WORK/clients/c0" \
  "$BIN" pull bench:1 --peer-ports 0 >/dev/null
end=$(date +%s.%N)
hub_cpu1=$(cpu_s "$HUB_PID")
python3 - "$start" "$end" "$hub_cpu0" "$hub_cpu1" "$WORK/time.c0" "$ONE_GIB" <<'PY'
import sys
start, end, h0, h1 = map(float, sys.argv[1:5])
u, s = map(float, open(sys.argv[5]).read().split()[-2:])
gb = int(sys.argv[6]) * (1 << 30) / 1e9
secs = end - start
print(f"time {secs:.2f} s, {gb * 1000 / secs:.0f} MB/s")
print(f"client CPU {u + s:.2f} s = {(u + s) / gb:.2f} CPU s/GB (incl. file SHA-256 check)")
print(f"hub CPU {h1 - h0:.2f} s = {(h1 - h0) / gb:.2f} CPU s/GB")
PY
stop_hub
}

if [ "$SCENARIOS" = tls ]; then
  for _ in $(seq "$ROUNDS"); do
    PEER_TLS=on one_to_one
    PEER_TLS=off one_to_one
  done
  exit 0
fi
one_to_one

echo "== 1 hub + ${MANY} clients at once, ${MANY_GIB} GiB image (peer TLS $PEER_TLS)"
start_hub "$MANY_GIB"
for i in $(seq "$MANY"); do login "c$i"; done
start=$(date +%s.%N)
pids=()
for i in $(seq "$MANY"); do
  SWARMHUB_HOME="$WORK/clients/c$i" "$BIN" pull bench:1 --peer-ports 0 --fallback-after 120 >/dev/null &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
end=$(date +%s.%N)
[ "$fail" = 0 ] || { echo "a pull failed" >&2; exit 1; }
python3 - "$start" "$end" "$MANY_GIB" "$WORK/clients" "$MANY" <<'PY'
import json, sys, os
start, end = float(sys.argv[1]), float(sys.argv[2])
size = int(sys.argv[3]) << 30
root, n = sys.argv[4], int(sys.argv[5])
hub = peers = http = 0
for i in range(1, n + 1):
    s = json.load(open(os.path.join(root, f"c{i}", "run", "last_pull.json")))
    hub += s["from_hub"]; peers += s["from_peers"]; http += s["from_http"]
print(f"all {n} complete in {end - start:.2f} s")
print(f"hub bytes up / image size = {hub / size:.2f} (peers {peers / size:.2f}, http {http / size:.2f})")
PY
stop_hub
