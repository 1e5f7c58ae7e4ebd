#!/usr/bin/env bash
# Loopback benchmarks of the real `swarmhub` binary (release build).
#
#   node/bench/loopback.sh            # both scenarios
#   ONE_GIB=2 MANY=16 MANY_GIB=1 node/bench/loopback.sh
#   SCENARIOS=tls ONE_GIB=1 node/bench/loopback.sh   # scenario 1, peer TLS on vs off
#   SCENARIOS=pairs ONE_GIB=1 ROUNDS=3 SWARMHUB_BIN=... node/bench/loopback.sh  # vs stock pairs
#
# 1. One hub to one client, ONE_GIB GiB image (default 2): MB/s, and CPU seconds
#    per GB on each side (user+system, from /proc).
# 2. One hub and MANY clients (default 16), MANY_GIB GiB image (default 1): time
#    until all complete, hub bytes up / image size.
# HUB_UPLOAD_RATE (e.g. 100M) caps the hub seeder's upload, as a hub uplink would.
# Peer links are mutual TLS (the default) unless PEER_TLS=off; SCENARIOS=tls runs
# scenario 1 with peer TLS on, then off, alternating ROUNDS times (default 2).
# SCENARIOS=pairs runs, ROUNDS times (default 2) in this order, one ONE_GIB GiB
# image (IMAGE_MIB=N overrides the size, for smoke tests) from a seeder to a
# leecher on 127.0.0.1: swarmhub hub -> swarmhub pull with peer TLS on, the same
# with peer TLS off, qbittorrent-nox -> qbittorrent-nox, aria2c -> aria2c (the
# stock pairs meet through a local opentracker, started fresh for each
# transfer). It prints per transfer and as medians: MB/s (decimal, image bytes /
# end-to-end time), leecher and seeder CPU seconds per GB (user+system), checks
# every download with sha256sum against the source, and prints the ratio of
# swarmhub (TLS on) MB/s to the best stock pair's, and swarmhub's data phase
# (`data_seconds` in the pull's last_pull.json: first block accepted to last
# piece verified) as MB/s and as a share of the CPU limit 2 / (C_leecher +
# C_seeder) in CPU s/GB. Needs qbittorrent-nox, aria2,
# opentracker and mktorrent (Debian packages). XFER_TIMEOUT (default 300 s)
# bounds each transfer; KEEP_WORK=1 keeps the temporary folder (logs) on exit.
# Method and fairness notes (page cache, timers, CPU): node/bench/README.md.
# Figures vary with the machine; record them with the command line used.
set -euo pipefail

ONE_GIB=${ONE_GIB:-2}
MANY=${MANY:-16}
MANY_GIB=${MANY_GIB:-1}
HUB_UPLOAD_RATE=${HUB_UPLOAD_RATE:-unlimited}
PEER_TLS=${PEER_TLS:-on}
SCENARIOS=${SCENARIOS:-all}
ROUNDS=${ROUNDS:-2}
XFER_TIMEOUT=${XFER_TIMEOUT:-300}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SWARMHUB_BIN:-$TARGET/release/swarmhub}
if [ -z "${SWARMHUB_BIN:-}" ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release -p swarmhub-node >&2)
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarmhub-bench.XXXXXX")
HUB_PID=""
PIDS=() # every other long-running child (seeders, leechers, trackers)
cleanup() {
  local p
  for p in $HUB_PID "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in $HUB_PID "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
TICKS=$(getconf CLK_TCK)

cpu_s() { # user+system seconds of a pid so far
  awk -v t="$TICKS" '{ print ($14 + $15) / t }' "/proc/$1/stat"
}

sub() { awk -v a="$1" -v b="$2" 'BEGIN { print a - b }'; }

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

check_sha() { # $1 = downloaded file, $2 = label; the source's digest is SRC_SHA
  local got
  got=$(sha256sum < "$1" | cut -d' ' -f1)
  [ "$got" = "$SRC_SHA" ] || fail "$2: SHA-256 of the download $got != source $SRC_SHA"
}

record() { # $1 = pair, $2 = start, $3 = end (epoch s), $4 = leecher CPU s, $5 = seeder CPU s,
  # $6 = data-phase seconds (swarmhub only: first block to last piece verified, from last_pull.json)
  local data=${6:-0}
  echo "$1 $ROUND $IMAGE_BYTES $(sub "$3" "$2") $4 $5 $data" >> "$RESULTS"
  awk -v n="$1" -v b="$IMAGE_BYTES" -v t="$(sub "$3" "$2")" -v l="$4" -v s="$5" -v d="$data" 'BEGIN {
    gb = b / 1e9
    printf "%s: %.2f s, %.0f MB/s, leecher %.2f CPU s/GB, seeder %.2f CPU s/GB, SHA-256 ok", n, t, b / 1e6 / t, l / gb, s / gb
    if (d > 0) {
      lim = 2 / (l / gb + s / gb) * 1000
      printf "; data phase %.2f s, %.0f MB/s = %.0f%% of the CPU limit 2 / (C_leecher + C_seeder) = %.0f MB/s", d, b / 1e6 / d, b / 1e6 / d / lim * 100, lim
    }
    printf "\n"
  }'
}

start_hub() { # $1 = image GiB; $2 = an image file to serve (default: a fresh random one)
  local gib=$1 src=${2:-}
  rm -rf "$WORK/hub" "$WORK/clients"; mkdir -p "$WORK/hub" "$WORK/clients"
  if [ -z "$src" ]; then
    head -c $((gib << 30)) /dev/urandom > "$WORK/image.bin"
    IMAGE_BYTES=$((gib << 30))
    "$BIN" hub --dir "$WORK/hub" image add bench:1 "$WORK/image.bin" >&2
    rm -f "$WORK/image.bin"
  else
    IMAGE_BYTES=$(stat -c %s "$src")
    "$BIN" hub --dir "$WORK/hub" image add bench:1 "$src" >/dev/null
  fi
  "$BIN" hub --dir "$WORK/hub" config --peer-tls="$PEER_TLS" >/dev/null 2>&1
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

one_to_one() { # $1 = image file (optional: default a fresh ONE_GIB GiB one)
local src=${1:-}
if [ -z "$src" ]; then
  echo "== 1 hub -> 1 client, ${ONE_GIB} GiB image (loopback, release build, peer TLS $PEER_TLS)"
else
  echo "== swarmhub hub -> swarmhub pull, $(($(stat -c %s "$src") >> 20)) MiB image, peer TLS $PEER_TLS"
fi
start_hub "$ONE_GIB" "$src"
login c0
# The seeder's copy in the page cache, as for every pair (see README).
cat "$WORK"/hub/cache/bench/1/* > /dev/null
hub_cpu0=$(cpu_s "$HUB_PID")
start=$(date +%s.%N)
timeout "$XFER_TIMEOUT" /usr/bin/time -f "%U %S" -o "$WORK/time.c0" env SWARMHUB_HOME="$WORK/clients/c0" \
  "$BIN" pull bench:1 --peer-ports 0 >/dev/null &
local pid=$! rc=0
wait "$pid" || rc=$?
end=$(date +%s.%N)
[ "$rc" = 124 ] && fail "swarmhub pull (peer TLS $PEER_TLS) timed out after $XFER_TIMEOUT s"
[ "$rc" = 0 ] || fail "swarmhub pull (peer TLS $PEER_TLS) exited with $rc; hub log: $(tail -5 "$WORK/hub.err")"
hub_cpu1=$(cpu_s "$HUB_PID")
if [ -n "$src" ]; then
  local got
  got=$(find "$WORK/clients/c0/images" -type f)
  [ "$(printf '%s\n' "$got" | wc -l)" = 1 ] || fail "swarmhub pull left not one file: $got"
  check_sha "$got" "swarmhub (peer TLS $PEER_TLS)"
  record "swarmhub-tls-$PEER_TLS" "$start" "$end" \
    "$(awk '{ print $(NF-1) + $NF }' "$WORK/time.c0")" "$(sub "$hub_cpu1" "$hub_cpu0")" \
    "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("data_seconds", 0))' \
      "$WORK/clients/c0/run/last_pull.json")"
  stop_hub
  rm -rf "$WORK/hub" "$WORK/clients"
  return
fi
python3 - "$start" "$end" "$hub_cpu0" "$hub_cpu1" "$WORK/time.c0" "$IMAGE_BYTES" <<'PY'
import sys
start, end, h0, h1 = map(float, sys.argv[1:5])
u, s = map(float, open(sys.argv[5]).read().split()[-2:])
gb = int(sys.argv[6]) / 1e9
secs = end - start
print(f"time {secs:.2f} s, {gb * 1000 / secs:.0f} MB/s")
print(f"client CPU {u + s:.2f} s = {(u + s) / gb:.2f} CPU s/GB (incl. file SHA-256 check)")
print(f"hub CPU {h1 - h0:.2f} s = {(h1 - h0) / gb:.2f} CPU s/GB")
PY
stop_hub
}

# ---- SCENARIOS=pairs: swarmhub against stock BitTorrent pairs --------------

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_pid() { # TERM, up to 10 s, then KILL
  local p=$1
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# opentracker, fresh for every stock transfer (no stale peers from the last one).
# Debian's build serves only whitelisted info hashes, drops to `nobody` and
# chroots into -d, so the whitelist path is inside that folder.
start_tracker() {
  local d=$WORK/tracker
  rm -rf "$d"; mkdir -p "$d"; chmod 755 "$d"
  echo "$INFO_HASH" > "$d/whitelist"; chmod 644 "$d/whitelist"
  opentracker -i 127.0.0.1 -p "$TRACKER_PORT" -P "$TRACKER_PORT" -d "$d" -w /whitelist \
    > "$WORK/tracker.log" 2>&1 &
  TRACKER_PID=$!; PIDS+=("$TRACKER_PID")
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$TRACKER_PORT/stats" && return # any answer
    kill -0 "$TRACKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "opentracker did not start: $(tail -5 "$WORK/tracker.log")"
}

wait_seeder_announced() { # until the tracker lists a complete peer
  local q i
  q=$(echo "$INFO_HASH" | sed 's/../%&/g')
  for i in $(seq 300); do
    curl -sf "http://127.0.0.1:$TRACKER_PORT/scrape?info_hash=$q" 2>/dev/null | grep -aq '8:completei[1-9]' && return
    sleep 0.1
  done
  fail "$1: the seeder never announced itself complete to the tracker"
}

# qBittorrent (libtorrent 2.0) never connected to a peer on its own listen
# address, so the qBittorrent seeder binds 127.0.0.1 and the leecher 127.0.0.2.
qbt_start() { # $1 = name, $2 = loopback address to bind; sets QBT_PID, QBT_API, QBT_HOME
  local home=$WORK/qbt-$1 addr=$2 webui bt
  webui=$(free_port); bt=$(free_port)
  rm -rf "$home"; mkdir -p "$home/qBittorrent/config"
  printf '#!/bin/sh\ndate +%%s.%%N > %s/done.tmp && mv %s/done.tmp %s/done\n' "$home" "$home" "$home" > "$home/done.sh"
  chmod 755 "$home/done.sh"
  cat > "$home/qBittorrent/config/qBittorrent.conf" <<CONF
[LegalNotice]
Accepted=true

[AutoRun]
enabled=true
program=$home/done.sh

[BitTorrent]
Session\\DHTEnabled=false
Session\\PeXEnabled=false
Session\\LSDEnabled=false
Session\\Encryption=0
Session\\BTProtocol=TCP
Session\\Port=$bt
Session\\Interface=lo
Session\\InterfaceName=lo
Session\\InterfaceAddress=$addr
Session\\QueueingSystemEnabled=false
Session\\MaxConnections=-1
Session\\MaxConnectionsPerTorrent=-1
Session\\MaxUploads=-1
Session\\MaxUploadsPerTorrent=-1
Session\\GlobalMaxRatio=-1
Session\\AnonymousModeEnabled=false

[Preferences]
Connection\\UPnP=false
Connection\\ResolvePeerCountries=false
General\\UseRandomPort=false
WebUI\\Address=127.0.0.1
WebUI\\Port=$webui
WebUI\\LocalHostAuth=false
WebUI\\HostHeaderValidation=false
WebUI\\CSRFProtection=false
CONF
  HOME=$home qbittorrent-nox --profile="$home" --webui-port="$webui" > "$home/log" 2>&1 &
  QBT_PID=$!; PIDS+=("$QBT_PID"); QBT_API=http://127.0.0.1:$webui/api/v2; QBT_HOME=$home
  for _ in $(seq 300); do
    curl -sf -o /dev/null "$QBT_API/app/version" && return
    kill -0 "$QBT_PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "qbittorrent-nox ($1) did not serve its Web API: $(tail -5 "$home/log")"
}

qbt_add() { # $1 = API, $2 = save path, $3 = skip_checking
  local out
  out=$(curl -sf -F "torrents=@$WORK/bench.torrent" -F "savepath=$2" -F "skip_checking=$3" \
    -F paused=false "$1/torrents/add") || fail "qBittorrent Web API add failed"
  [ "$out" = "Ok." ] || fail "qBittorrent Web API add answered: $out"
}

qbt_pair() {
  echo "== qbittorrent-nox seed -> qbittorrent-nox leech, $((IMAGE_BYTES >> 20)) MiB image"
  cat "$SRC/image.bin" > /dev/null
  start_tracker
  qbt_start seed 127.0.0.1; local seed=$QBT_PID seed_api=$QBT_API seed_home=$QBT_HOME
  qbt_add "$seed_api" "$SRC" true
  wait_seeder_announced qbittorrent
  qbt_start leech 127.0.0.2; local leech=$QBT_PID api=$QBT_API home=$QBT_HOME
  rm -rf "$WORK/dl"; mkdir -p "$WORK/dl"
  local s0 l0 s1 l1 start end i=0
  s0=$(cpu_s "$seed"); l0=$(cpu_s "$leech")
  start=$(date +%s.%N)
  qbt_add "$api" "$WORK/dl" false
  # Completion: qBittorrent's "torrent finished" AutoRun hook writes the time.
  while [ ! -f "$home/done" ]; do
    kill -0 "$leech" 2>/dev/null || fail "qbittorrent-nox leecher died: $(tail -5 "$home/log")"
    if [ $((++i % 50)) = 0 ] && [ "$(sub "$(date +%s.%N)" "$start" | cut -d. -f1)" -ge "$XFER_TIMEOUT" ]; then
      fail "qbittorrent transfer timed out after $XFER_TIMEOUT s; leecher trackers: $(curl -s "$api/torrents/trackers?hash=$INFO_HASH"), peers: $(curl -s "$api/sync/torrentPeers?hash=$INFO_HASH" | head -c 400), progress: $(curl -s "$api/torrents/info" | head -c 300)"
    fi
    sleep 0.05
  done
  end=$(cat "$home/done")
  s1=$(cpu_s "$seed"); l1=$(cpu_s "$leech")
  stop_pid "$leech"; stop_pid "$seed"; stop_pid "$TRACKER_PID"
  check_sha "$WORK/dl/image.bin" qbittorrent
  record qbittorrent "$start" "$end" "$(sub "$l1" "$l0")" "$(sub "$s1" "$s0")"
  rm -rf "$WORK/dl" "$home" "$seed_home"
}

ARIA2_ARGS=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
  --bt-max-peers=0 --bt-require-crypto=false --file-allocation=none --disable-ipv6=true
  --console-log-level=warn --summary-interval=0 --max-overall-upload-limit=0
  --max-overall-download-limit=0 --bt-request-peer-speed-limit=100M)

aria2_pair() {
  echo "== aria2c seed -> aria2c leech, $((IMAGE_BYTES >> 20)) MiB image"
  cat "$SRC/image.bin" > /dev/null
  start_tracker
  local rpc bt seed i ok=""
  rpc=$(free_port); bt=$(free_port)
  rm -f "$SRC/image.bin.aria2"
  aria2c "${ARIA2_ARGS[@]}" --listen-port="$bt" --dir="$SRC" --check-integrity=true --seed-ratio=0.0 \
    --enable-rpc=true --rpc-listen-port="$rpc" "$WORK/bench.torrent" > "$WORK/aria2-seed.log" 2>&1 &
  seed=$!; PIDS+=("$seed")
  # Wait for the -V check to finish and the seeder to seed.
  for i in $(seq $((XFER_TIMEOUT * 10))); do
    kill -0 "$seed" 2>/dev/null || fail "aria2c seeder died: $(tail -5 "$WORK/aria2-seed.log")"
    if curl -sf "http://127.0.0.1:$rpc/jsonrpc" \
      -d '{"jsonrpc":"2.0","id":1,"method":"aria2.tellActive","params":[["seeder"]]}' 2>/dev/null |
      grep -q '"seeder":"true"'; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || fail "aria2c seeder not seeding after $XFER_TIMEOUT s"
  wait_seeder_announced aria2
  rm -rf "$WORK/dl"; mkdir -p "$WORK/dl"
  local s0 s1 start end rc=0 leech
  s0=$(cpu_s "$seed")
  start=$(date +%s.%N)
  timeout "$XFER_TIMEOUT" /usr/bin/time -f "%U %S" -o "$WORK/time.aria2" \
    aria2c "${ARIA2_ARGS[@]}" --listen-port="$(free_port)" --dir="$WORK/dl" --seed-time=0 \
    "$WORK/bench.torrent" > "$WORK/aria2-leech.log" 2>&1 &
  leech=$!
  wait "$leech" || rc=$?
  end=$(date +%s.%N)
  s1=$(cpu_s "$seed")
  stop_pid "$seed"; stop_pid "$TRACKER_PID"
  rm -f "$SRC/image.bin.aria2"
  [ "$rc" = 124 ] && fail "aria2c transfer timed out after $XFER_TIMEOUT s: $(tail -5 "$WORK/aria2-leech.log")"
  [ "$rc" = 0 ] || fail "aria2c leecher exited with $rc: $(tail -5 "$WORK/aria2-leech.log")"
  check_sha "$WORK/dl/image.bin" aria2
  record aria2 "$start" "$end" "$(awk '{ print $(NF-1) + $NF }' "$WORK/time.aria2")" "$(sub "$s1" "$s0")"
  rm -rf "$WORK/dl"
}

pairs() {
  local tool
  for tool in qbittorrent-nox aria2c opentracker mktorrent curl; do
    command -v "$tool" > /dev/null ||
      fail "$tool not found (apt-get install qbittorrent-nox aria2 opentracker mktorrent curl)"
  done
  local mib=${IMAGE_MIB:-$((ONE_GIB * 1024))}
  SRC=$WORK/src; mkdir -p "$SRC"
  head -c $((mib << 20)) /dev/urandom > "$SRC/image.bin"
  IMAGE_BYTES=$((mib << 20))
  SRC_SHA=$(sha256sum < "$SRC/image.bin" | cut -d' ' -f1)
  TRACKER_PORT=$(free_port)
  # Private torrent, 1 MiB pieces (swarmhub's piece size).
  mktorrent -p -a "http://127.0.0.1:$TRACKER_PORT/announce" -l 20 -o "$WORK/bench.torrent" "$SRC/image.bin" > /dev/null
  INFO_HASH=$(aria2c -S "$WORK/bench.torrent" | sed -n 's/^Info Hash: //p')
  [ -n "$INFO_HASH" ] || fail "no info hash in the torrent"
  RESULTS=$WORK/results; : > "$RESULTS"
  echo "pairs: $mib MiB image, $ROUNDS rounds, order per round: swarmhub TLS on, swarmhub TLS off, qbittorrent, aria2"
  echo "qBittorrent $(qbittorrent-nox --version | awk '{ print $2 }'), $(aria2c --version | head -1), swarmhub $BIN"
  for ROUND in $(seq "$ROUNDS"); do
    echo "=== round $ROUND of $ROUNDS"
    PEER_TLS=on one_to_one "$SRC/image.bin"
    PEER_TLS=off one_to_one "$SRC/image.bin"
    qbt_pair
    aria2_pair
  done
  python3 - "$RESULTS" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    pair, rnd, size, secs, lcpu, scpu, data = (line.split() + ["0"])[:7]
    gb = int(size) / 1e9
    runs.setdefault(pair, []).append((int(size) / 1e6 / float(secs), float(lcpu) / gb, float(scpu) / gb,
                                      int(size) / 1e6 / float(data) if float(data) > 0 else 0))
names = {"swarmhub-tls-on": "swarmhub, peer TLS on", "swarmhub-tls-off": "swarmhub, peer TLS off",
         "qbittorrent": "qbittorrent-nox -> qbittorrent-nox", "aria2": "aria2c -> aria2c"}
med = {p: [statistics.median(r[i] for r in rs) for i in range(3)] for p, rs in runs.items()}
print()
print(f"Medians of {len(next(iter(runs.values())))} alternating rounds (every run listed after the median):")
print()
print("| pair | MB/s | leecher CPU s/GB | seeder CPU s/GB |")
print("|---|---|---|---|")
for p, rs in runs.items():
    cells = [f"**{med[p][i]:.{0 if i == 0 else 2}f}** ({', '.join(f'{r[i]:.{0 if i == 0 else 2}f}' for r in rs)})" for i in range(3)]
    print(f"| {names.get(p, p)} | " + " | ".join(cells) + " |")
stock = [p for p in med if not p.startswith("swarmhub")]
best = max(stock, key=lambda p: med[p][0])
print()
print(f"ratio swarmhub (peer TLS on) / best stock pair ({names[best]}) MB/s: "
      f"{med['swarmhub-tls-on'][0]:.0f} / {med[best][0]:.0f} = {med['swarmhub-tls-on'][0] / med[best][0]:.2f}")
for p in ("swarmhub-tls-on", "swarmhub-tls-off"):
    if p in runs and all(r[3] > 0 for r in runs[p]):
        d = statistics.median(r[3] for r in runs[p])
        lim = 2 / (med[p][1] + med[p][2]) * 1000
        print(f"{names[p]}: data phase (first block to last piece verified) {d:.0f} MB/s, median; "
              f"CPU limit 2 / ({med[p][1]:.2f} + {med[p][2]:.2f}) = {lim:.0f} MB/s; {d / lim * 100:.0f}% of it")
PY
}

if [ "$SCENARIOS" = pairs ]; then
  pairs
  exit 0
fi

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
