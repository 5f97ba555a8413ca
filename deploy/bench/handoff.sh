#!/usr/bin/env bash
# A fourth node joins a loaded three-node cluster (or, with CHANGE=leave,
# the fourth node of a loaded four-node cluster leaves): what the handoff
# costs.
#
# Builds gyre (release), starts three nodes on loopback (n_val 3, R = W = 2,
# fsync group, Q = 256), writes KEYS keys of VALUE_SIZE bytes through
# `redis-cli --pipe`, measures GET latency with redis-benchmark, starts a
# fourth node with the throttle RATE, joins it, and while the partitions
# stream measures GET latency again. Prints:
#   - how long the change took (commit to every node settled), and the
#     stream's share of it;
#   - bytes moved vs the ideal share (all replica bytes / 4): target <= 1.25;
#   - the dry run's estimate vs the bytes moved: target within 10%;
#   - client p99 during the transfer vs before: target <= 2x. Both phases
#     run GETs in runs of DURING_REQUESTS and pool every run's histogram
#     (latency.py), so both are the p99 of all their GETs; the worst run's
#     p99 is printed too, but grows with the number of runs;
#   - the rate the throttle held vs its setting: target within 10%.
#
# Needs: cargo, curl, jq, python3, redis-cli, redis-benchmark (Debian:
# redis-tools).
#
# Environment:
#   KEYS        keys written before the join     [200000]
#   VALUE_SIZE  value bytes                      [100]
#   RATE        throttle of the new node, B/s    [2000000] (0: none)
#   CLIENTS     redis-benchmark connections      [50]
#   LOAD_CONNECTIONS  redis-cli --pipe loaders   [8]
#   DROP_GRACE  --handoff-drop-grace-secs of every node [the node's default]
#   HANDOFF_NICE  --handoff-nice of every node  [the node's default]
#   CHANGE      join or leave                    [join]
#   LOAD_DURING 1: GET load during the transfer; 0: none, to measure the
#               transfer alone                   [1]
#   DURING_REQUESTS  GETs per redis-benchmark run; during the change runs
#               repeat until one layout is in use everywhere [20000]
#   BEFORE_RUNS runs of DURING_REQUESTS GETs before the change [10]
#   POLL_SECS   how often the nodes are asked whether the change is done
#               (the times printed are as coarse) [0.2]
#   GYRE_BIN    use this gyre binary, do not build
#
# Usage: deploy/bench/handoff.sh
set -euo pipefail

KEYS=${KEYS:-200000}
VALUE_SIZE=${VALUE_SIZE:-100}
RATE=${RATE:-2000000}
CLIENTS=${CLIENTS:-50}
LOAD_CONNECTIONS=${LOAD_CONNECTIONS:-8}
READY_TIMEOUT=${READY_TIMEOUT:-60}
DROP_GRACE=${DROP_GRACE:-}
LOAD_DURING=${LOAD_DURING:-1}
DURING_REQUESTS=${DURING_REQUESTS:-20000}
BEFORE_RUNS=${BEFORE_RUNS:-10}
POLL_SECS=${POLL_SECS:-0.2}
CHANGE=${CHANGE:-join}
[[ $CHANGE == join || $CHANGE == leave ]] || die "CHANGE is join or leave, not $CHANGE"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in curl jq python3 redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install curl jq redis-tools)"
done

if [[ -z ${GYRE_BIN:-} ]]; then
    log "building gyre (release)"
    (cd "$ROOT" && cargo build --release --locked -p gyre)
    GYRE_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gyre
    [[ $GYRE_BIN = /* ]] || GYRE_BIN=$ROOT/$GYRE_BIN
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gyre-handoff.XXXXXX")
PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs "$@" every POLL_SECS until it succeeds or `timeout` seconds pass.
poll() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep "$POLL_SECS"
    done
}

"$GYRE_BIN" cert ca --cluster bench --out "$WORK/ca" >/dev/null
ready_line() { grep -m1 '"event":"ready"' "$WORK/node$1.out" 2>/dev/null; }
field() { ready_line "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }
start_node() {
    local i=$1
    shift
    "$GYRE_BIN" node --name "node$i" --cluster bench --data-dir "$WORK/node$i" \
        --ca-cert "$WORK/ca/ca.pem" --ca-key "$WORK/ca/ca.key" \
        --peer-listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
        --fsync group --partitions 256 ${DROP_GRACE:+--handoff-drop-grace-secs "$DROP_GRACE"} \
        ${HANDOFF_NICE:+--handoff-nice "$HANDOFF_NICE"} \
        "$@" >"$WORK/node$i.out" 2>"$WORK/node$i.log" &
    PIDS+=($!)
    poll "$READY_TIMEOUT" ready_line "$i" >/dev/null || die "node$i did not start: $(tail -5 "$WORK/node$i.log")"
}
declare -a ID RESP HTTP
start_node 1
SEED=$(field 1 peer)
start_node 2 --seed "$SEED"
start_node 3 --seed "$SEED"
FIRST=(1 2 3)
if [[ $CHANGE == leave ]]; then
    start_node 4 --seed "$SEED" --handoff-rate "$RATE"
    FIRST=(1 2 3 4)
fi
for i in "${FIRST[@]}"; do ID[i]=$(field "$i" id); RESP[i]=$(field "$i" resp); HTTP[i]=$(field "$i" http); done
ADMIN="http://${HTTP[1]}"
join() { "$GYRE_BIN" cluster join "$1" --node "$ADMIN" >/dev/null 2>&1; }
for i in "${FIRST[@]}"; do poll "$READY_TIMEOUT" join "${ID[i]}" || die "node1 did not learn of node$i"; done
"$GYRE_BIN" cluster commit --node "$ADMIN" >/dev/null
healthy() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$1/health") == 200 ]]; }
for i in "${FIRST[@]}"; do poll "$READY_TIMEOUT" healthy "${HTTP[i]}" || die "node$i holds no layout"; done

log "writing $KEYS keys of $VALUE_SIZE bytes"
VALUE=$(head -c "$VALUE_SIZE" /dev/zero | tr '\0' 'v')
start=$SECONDS
LOADERS=()
for part in $(seq 0 $((LOAD_CONNECTIONS - 1))); do
    awk -v n="$KEYS" -v v="$VALUE" -v p="$part" -v m="$LOAD_CONNECTIONS" \
        'BEGIN { for (i = p; i < n; i += m) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$%d\r\n%s\r\n", i, length(v), v }' |
        redis-cli -h 127.0.0.1 -p "${RESP[1 + part % ${#FIRST[@]}]##*:}" --pipe >"$WORK/load$part.out" &
    LOADERS+=($!)
done
for pid in "${LOADERS[@]}"; do wait "$pid" || die "loading failed"; done
log "loaded in $((SECONDS - start)) s: $(cat "$WORK"/load*.out | grep -c 'errors: 0') of $LOAD_CONNECTIONS connections without errors"

# One run of GETs; its whole output (latency.py reads the histogram).
get_run() {
    redis-benchmark -h 127.0.0.1 -p "${RESP[1]##*:}" -t get -c "$CLIENTS" -r "$KEYS" \
        -n "$DURING_REQUESTS" >"$1" 2>&1
}
log "GET latency before the change: $BEFORE_RUNS runs of $DURING_REQUESTS"
for n in $(seq 1 "$BEFORE_RUNS"); do get_run "$WORK/before.$n.out"; done
BEFORE=$(python3 "$ROOT/deploy/bench/latency.py" $(ls -v "$WORK"/before.*.out))
log "before: $BEFORE"

if [[ $CHANGE == join ]]; then
    start_node 4 --seed "$SEED" --handoff-rate "$RATE"
    ID[4]=$(field 4 id); HTTP[4]=$(field 4 http)
    poll "$READY_TIMEOUT" join "${ID[4]}" || die "node1 did not learn of node4"
    RECEIVERS=(4)
else
    # The three that stay receive what it held, each at the throttle.
    for i in 1 2 3; do
        "$GYRE_BIN" cluster throttle --rate "$RATE" --only --node "http://${HTTP[i]}" >/dev/null
    done
    "$GYRE_BIN" cluster leave "${ID[4]}" --node "$ADMIN" >/dev/null
    RECEIVERS=(1 2 3)
fi
# After a heavy load a node may be suspected for a moment; the plan's
# safety verdict counts live replicas, so start from everyone seen up.
seen_up() {
    [[ $(curl -s "$ADMIN/v1/cluster" | jq '[.members[] | select(.in_layout or .status == "joining") | .up] | all') == true ]]
}
poll 60 seen_up || die "node1 does not see every node up"
PLAN=$(curl -s -X POST -H 'content-type: application/json' -d '{"command":"plan"}' "$ADMIN/v1/cluster/admin")
ESTIMATE=$(jq '.plan.bytes' <<<"$PLAN")
log "plan: $(jq -c '{moves: .plan.moves, bytes: .plan.bytes, eta_secs: .plan.eta_secs, safe: .plan.safe}' <<<"$PLAN")"
T0=$(date +%s.%N)
"$GYRE_BIN" cluster commit --node "$ADMIN" >/dev/null
# GETs in runs of DURING_REQUESTS from the commit until the change has
# settled (its old copies dropped too: clients see that phase as well).
during_load() {
    local n=0
    while [[ $n == 0 || ! -e $WORK/change-done ]]; do
        echo "$(date +%s.%N) $T0" | awk '{ printf "+%.1f ", $1 - $2 }' >>"$WORK/during.starts"
        get_run "$WORK/during.$n.out"
        n=$((n + 1))
    done
}
if [[ $LOAD_DURING == 1 ]]; then
    during_load &
else
    true &
fi
BENCH=$!
# Complete: one layout in use everywhere (reads and writes on the new
# replicas only). Settled: and every old copy handed off and dropped.
# One python process polls all four nodes: while the change runs the
# polling shares the two cores with the nodes and the GET load, and a curl
# and a jq per node every 0.1 s (80 processes a second) took about a tenth
# of them, enough to double the GET p99 of a change streaming at 0.5 MB/s;
# a curl and a jq for all four every 0.2 s still took 6% of the first
# seconds' samples.
URLS=()
for i in 1 2 3 4; do URLS+=("http://${HTTP[i]}/v1/cluster"); done
python3 "$ROOT/deploy/bench/settle.py" "$POLL_SECS" 3600 "${URLS[@]}" >"$WORK/settle.out" ||
    die "the change did not settle within an hour"
TC=$(sed -n 1p "$WORK/settle.out")
T1=$(sed -n 2p "$WORK/settle.out")
touch "$WORK/change-done"
wait "$BENCH" || true
# The same load once the change has settled: what the new layout costs
# in steady state (a fourth node makes node 1 forward the keys it no
# longer holds), apart from what the change itself costs.
log "GET latency after the change: $BEFORE_RUNS runs of $DURING_REQUESTS"
for n in $(seq 1 "$BEFORE_RUNS"); do get_run "$WORK/after.$n.out"; done
AFTER=$(python3 "$ROOT/deploy/bench/latency.py" $(ls -v "$WORK"/after.*.out))
log "after: $AFTER"
DURING=$(python3 "$ROOT/deploy/bench/latency.py" $(ls -v "$WORK"/during.*.out 2>/dev/null) || true)
log "during: $DURING"
[[ -e $WORK/during.starts ]] && log "during runs started at (s after the commit): $(cat "$WORK/during.starts")"
log "one layout everywhere at +$(awk -v a="$T0" -v b="$TC" 'BEGIN { printf "%.1f", b - a }') s, settled at +$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s"
# What the receivers moved, and the longest of their transfers.
MOVED=0 TOOK=0 STREAM=0
for i in "${RECEIVERS[@]}"; do
    LAST=$(curl -s "http://${HTTP[i]}/v1/cluster" | jq '.transfers.last')
    MOVED=$((MOVED + $(jq '.bytes // 0' <<<"$LAST")))
    TOOK=$(jq --argjson t "$TOOK" '[.took_ms // 0, $t] | max' <<<"$LAST")
    STREAM=$(jq --argjson t "$STREAM" '[.stream_ms // 0, $t] | max' <<<"$LAST")
done
KEYLEN=16
IDEAL=$((KEYS * (VALUE_SIZE + KEYLEN) * 3 / 4))
col() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }   # a field of latency.py's line
awk -v streamonly="$STREAM" -v took="$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')" \
    -v complete="$(awk -v a="$T0" -v b="$TC" 'BEGIN { print b - a }')" -v stream="$TOOK" -v moved="$MOVED" -v ideal="$IDEAL" \
    -v est="$ESTIMATE" -v rate="$RATE" -v b99="$(col "$BEFORE" p99)" -v d99="$(col "$DURING" p99)" \
    -v bw99="$(col "$BEFORE" worst_run_p99)" -v dw99="$(col "$DURING" worst_run_p99)" \
    -v bruns="$(col "$BEFORE" runs)" -v druns="$(col "$DURING" runs)" \
    -v brps="$(col "$BEFORE" ops)" -v drps="$(col "$DURING" ops)" -v keys="$KEYS" \
    -v a99="$(col "$AFTER" p99)" -v arps="$(col "$AFTER" ops)" 'BEGIN {
    printf "| measure | value | target |\n|---|--:|--:|\n"
    printf "| keys before the change | %d |  |\n", keys
    printf "| change, commit to one layout everywhere | %.1f s |  |\n", complete
    printf "| change, commit to settled everywhere (old copies dropped) | %.1f s |  |\n", took
    printf "| prepare + stream + verify on the new node | %.1f s |  |\n", stream / 1000
    printf "| first chunk to last | %.1f s |  |\n", streamonly / 1000
    printf "| bytes moved | %d |  |\n", moved
    printf "| stream rate (first chunk to last) | %.2f MB/s | >= 20 MB/s |\n", moved / (streamonly / 1000) / 1e6
    printf "| bytes moved / ideal share | %.3f | <= 1.25 |\n", moved / ideal
    printf "| dry-run estimate / bytes moved | %.3f | 0.9 - 1.1 |\n", est / moved
    if (d99 != "" && d99 != "nan") {
        printf "| GET p99 before / during, all GETs of each phase (ms) | %s / %s (%.2fx) | during <= 2x |\n", b99, d99, d99 / b99
        printf "| GET p99 of the worst run before / during (ms), of %d / %d runs | %s / %s (%.2fx) |  |\n", bruns, druns, bw99, dw99, dw99 / bw99
    }
    printf "| GET p99 before / after the change (ms) | %s / %s (%.2fx) |  |\n", b99, a99, a99 / b99
    printf "| GET ops/s before / during / after | %s / %s / %s |  |\n", brps, drps, arps
    if (rate > 0) printf "| rate held (first chunk to last) / throttle | %.3f | 0.9 - 1.1 |\n", moved / (streamonly / 1000) / rate
}'
