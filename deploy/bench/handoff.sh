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
#   - client p99 during the transfer vs before: target <= 2x;
#   - the rate the throttle held vs its setting: target within 10%.
#
# Needs: cargo, curl, jq, redis-cli, redis-benchmark (Debian: redis-tools).
#
# Environment:
#   KEYS        keys written before the join     [200000]
#   VALUE_SIZE  value bytes                      [100]
#   RATE        throttle of the new node, B/s    [2000000] (0: none)
#   CLIENTS     redis-benchmark connections      [50]
#   LOAD_CONNECTIONS  redis-cli --pipe loaders   [8]
#   DROP_GRACE  --handoff-drop-grace-secs of every node [the node's default]
#   CHANGE      join or leave                    [join]
#   LOAD_DURING 1: GET load during the transfer; 0: none, to measure the
#               transfer alone                   [1]
#   DURING_REQUESTS  GETs per redis-benchmark run during the change; runs
#               repeat until one layout is in use everywhere, and the worst
#               run's p99 is reported            [20000]
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
CHANGE=${CHANGE:-join}
[[ $CHANGE == join || $CHANGE == leave ]] || die "CHANGE is join or leave, not $CHANGE"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in curl jq redis-cli redis-benchmark; do
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

poll() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
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

log "GET latency before the join"
BEFORE=$(redis-benchmark -h 127.0.0.1 -p "${RESP[1]##*:}" -t get -c "$CLIENTS" -r "$KEYS" -n 200000 --csv | tail -1)

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
# GETs in runs of DURING_REQUESTS while the change is in flight, so that
# the latency measured is the transfer's, not that of whatever follows.
during_load() {
    local n=0
    while [[ $n == 0 || ! -e $WORK/change-done ]]; do
        redis-benchmark -h 127.0.0.1 -p "${RESP[1]##*:}" -t get -c "$CLIENTS" -r "$KEYS" \
            -n "$DURING_REQUESTS" --csv | tail -1 >"$WORK/during.$n.csv"
        n=$((n + 1))
    done
}
if [[ $LOAD_DURING == 1 ]]; then
    during_load &
else
    echo '"GET","-","-","-","-","-","-","-"' >"$WORK/during.0.csv" &
fi
BENCH=$!
# Complete: one layout in use everywhere (reads and writes on the new
# replicas only). Settled: and every old copy handed off and dropped.
all_nodes() {
    local i s
    for i in 1 2 3 4; do
        s=$(curl -s "http://${HTTP[i]}/v1/cluster") || return 1
        [[ $(jq "$1" <<<"$s") == true ]] || return 1
    done
}
poll 3600 all_nodes '.change == null' || die "the change did not complete within an hour"
TC=$(date +%s.%N)
touch "$WORK/change-done"
poll 3600 all_nodes '.change == null and .transfers.to_drop == 0' || die "the old copies were not dropped within an hour"
T1=$(date +%s.%N)
wait "$BENCH" || true
# The run with the worst p99.
DURING=$(cat "$WORK"/during.*.csv | tr -d '"' | sort -t, -k7 -g | tail -1)
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
col() { cut -d, -f"$2" <<<"$1" | tr -d '"'; }   # redis-benchmark 7 CSV: test,rps,avg,min,p50,p95,p99,max
awk -v streamonly="$STREAM" -v took="$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')" \
    -v complete="$(awk -v a="$T0" -v b="$TC" 'BEGIN { print b - a }')" -v stream="$TOOK" -v moved="$MOVED" -v ideal="$IDEAL" \
    -v est="$ESTIMATE" -v rate="$RATE" -v b99="$(col "$BEFORE" 7)" -v d99="$(col "$DURING" 7)" \
    -v brps="$(col "$BEFORE" 2)" -v drps="$(col "$DURING" 2)" -v keys="$KEYS" 'BEGIN {
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
    printf "| GET p99 before / during (ms) | %s / %s | during <= 2x |\n", b99, d99
    printf "| GET ops/s before / during | %s / %s |  |\n", brps, drps
    if (rate > 0) printf "| rate held (first chunk to last) / throttle | %.3f | 0.9 - 1.1 |\n", moved / (streamonly / 1000) / rate
}'
