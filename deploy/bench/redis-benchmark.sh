#!/usr/bin/env bash
# Gyre against redis-server, with redis-benchmark, on one machine.
#
# Builds gyre (release), starts a 3-node Gyre cluster on loopback (n_val 3,
# R = W = 2, fsync group) and a redis-server without persistence, then runs
# redis-benchmark (50 clients, 100-byte values, random keys over 100000,
# SET and GET, pipeline 1 and 16) against:
#   gyre-1node  one node's RESP port (that node coordinates every request;
#               each write still goes to all three replicas)
#   gyre-3node  three redis-benchmark processes at once, one per node, each
#               with a third of the requests: ops/s is their sum, p50/p99
#               the worst of the three (percentiles cannot be added)
#   redis       redis-server
# and prints one table. Every process it started is stopped on exit.
#
# Needs: cargo, curl, redis-server and redis-benchmark (Debian: redis-server,
# redis-tools; redis-benchmark 7 for the CSV latency columns).
#
# Environment:
#   REQUESTS_P1   requests per test at pipeline 1   [200000]
#   REQUESTS_P16  requests per test at pipeline 16  [1000000]
#   CLIENTS       redis-benchmark connections       [50]
#   VALUE_SIZE    value size in bytes               [100]
#   KEYSPACE      random key range (-r)             [100000]
#   PIPELINES     pipeline depths to run            ["1 16"]
#   SPREAD        also run the 3-node spread (0/1)  [1]
#   GYRE_BIN      use this gyre binary, do not build
#   CARGO_TARGET_DIR  where cargo builds (as cargo reads it)
#   RESULTS_DIR   if set, the raw CSV and logs are copied there
#
# Usage: deploy/bench/redis-benchmark.sh
set -euo pipefail

REQUESTS_P1=${REQUESTS_P1:-200000}
REQUESTS_P16=${REQUESTS_P16:-1000000}
CLIENTS=${CLIENTS:-50}
VALUE_SIZE=${VALUE_SIZE:-100}
KEYSPACE=${KEYSPACE:-100000}
PIPELINES=${PIPELINES:-"1 16"}
SPREAD=${SPREAD:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in curl redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install redis-server redis-tools curl)"
done

# --- build -----------------------------------------------------------------
if [[ -n ${GYRE_BIN:-} ]]; then
    [[ -x $GYRE_BIN ]] || die "GYRE_BIN=$GYRE_BIN is not executable"
else
    log "building gyre (release)"
    (cd "$ROOT" && cargo build --release --locked -p gyre)
    GYRE_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gyre
    [[ $GYRE_BIN = /* ]] || GYRE_BIN=$ROOT/$GYRE_BIN
fi

# --- clean-up --------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gyre-bench.XXXXXX")
PIDS=()
BENCH_PIDS=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${BENCH_PIDS[@]}" "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # Gyre flushes its store on SIGTERM; give every process 15 s, then KILL.
    local deadline=$((SECONDS + 15))
    for pid in "${BENCH_PIDS[@]}" "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n ${RESULTS_DIR:-} ]]; then
        mkdir -p "$RESULTS_DIR"
        cp -r "$WORK"/*.csv "$WORK"/*.err "$WORK"/logs "$RESULTS_DIR"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls `$@` every 100 ms until it succeeds or `$1` seconds pass.
poll() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# Busy share of all CPUs over one second, in percent, from /proc/stat: the
# figures mean little if something else is running.
cpu_busy() {
    local a b
    read -r -a a < <(grep '^cpu ' /proc/stat)
    sleep 1
    read -r -a b < <(grep '^cpu ' /proc/stat)
    local total=0 idle i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    idle=$((b[4] - a[4] + b[5] - a[5]))
    echo $(((total - idle) * 100 / (total > 0 ? total : 1)))
}
BUSY_BEFORE=$(cpu_busy)
if ((BUSY_BEFORE > 20)); then
    log "warning: the CPUs are ${BUSY_BEFORE}% busy before the benchmark starts; figures will be low"
fi

# --- the Gyre cluster ------------------------------------------------------
mkdir -p "$WORK/logs"
"$GYRE_BIN" cert ca --cluster bench --out "$WORK/ca" >/dev/null

ready_line() { grep -m1 '"event":"ready"' "$WORK/node$1.out" 2>/dev/null; }
# A field of the ready line: id, peer, resp or http.
field() { ready_line "$1" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }

start_node() {
    local i=$1
    shift
    "$GYRE_BIN" node \
        --name "node$i" \
        --cluster bench \
        --data-dir "$WORK/node$i" \
        --ca-cert "$WORK/ca/ca.pem" \
        --ca-key "$WORK/ca/ca.key" \
        --peer-listen 127.0.0.1:0 \
        --resp-listen 127.0.0.1:0 \
        --http-listen 127.0.0.1:0 \
        --fsync group \
        "$@" >"$WORK/node$i.out" 2>"$WORK/logs/node$i.log" &
    PIDS+=($!)
    poll "$READY_TIMEOUT" ready_line "$i" >/dev/null || {
        tail -n 20 "$WORK/logs/node$i.log" >&2
        die "node$i did not print its ready line within ${READY_TIMEOUT}s"
    }
}

log "starting 3 gyre nodes in $WORK"
start_node 1
SEED=$(field 1 peer)
start_node 2 --seed "$SEED"
start_node 3 --seed "$SEED"

declare -a ID RESP HTTP
for i in 1 2 3; do
    ID[i]=$(field "$i" id)
    RESP[i]=$(field "$i" resp)
    HTTP[i]=$(field "$i" http)
done

# A join is refused until gossip has told node1 of the node.
join() {
    "$GYRE_BIN" cluster join "$1" --node "http://${HTTP[1]}" >/dev/null 2>&1
}
for i in 1 2 3; do
    poll "$READY_TIMEOUT" join "${ID[i]}" || die "node1 did not learn of node$i (${ID[i]})"
done
"$GYRE_BIN" cluster commit --node "http://${HTTP[1]}" >/dev/null

healthy() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$1/health") == 200 ]]; }
for i in 1 2 3; do
    poll "$READY_TIMEOUT" healthy "${HTTP[i]}" || die "node$i holds no layout after ${READY_TIMEOUT}s"
done
log "cluster formed:"
"$GYRE_BIN" cluster status --node "http://${HTTP[1]}" >&2

# A round trip through the RESP front end before measuring anything.
[[ $(redis-cli -h 127.0.0.1 -p "${RESP[1]##*:}" SET bench:probe ok) == OK ]] || die "SET through gyre failed"
[[ $(redis-cli -h 127.0.0.1 -p "${RESP[2]##*:}" GET bench:probe) == ok ]] || die "GET through gyre failed"

# --- redis-server ----------------------------------------------------------
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
REDIS_PORT=$(free_port) || die "no free port for redis-server"
mkdir -p "$WORK/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/redis" --daemonize no >"$WORK/logs/redis.log" 2>&1 &
PIDS+=($!)
redis_up() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null) == PONG ]]; }
poll "$READY_TIMEOUT" redis_up || die "redis-server did not answer PING"
log "redis-server on 127.0.0.1:$REDIS_PORT"

# --- benchmark -------------------------------------------------------------
# bench NAME PORT REQUESTS PIPELINE: starts redis-benchmark for SET and GET,
# CSV to $WORK/NAME.csv; bench_wait waits for all started. (In the
# background, so that a signal reaches the trap at once.)
bench() {
    local name=$1 port=$2 requests=$3 pipeline=$4
    redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$requests" \
        -d "$VALUE_SIZE" -r "$KEYSPACE" -P "$pipeline" -t set,get --csv \
        >"$WORK/$name.csv" 2>"$WORK/$name.err" &
    BENCH_PIDS+=($!)
}
bench_wait() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        wait "$pid" || die "redis-benchmark failed: $(cat "$WORK"/*.err)"
    done
    BENCH_PIDS=()
}

# Column `col` (rps=2, p50=5, p99=7) of test `test` in a CSV file.
csv_field() {
    awk -F, -v t="\"$2\"" -v c="$3" '$1 == t { gsub(/"/, "", $c); print $c }' "$1"
}

declare -A RESULT
for pipeline in $PIPELINES; do
    if ((pipeline == 1)); then requests=$REQUESTS_P1; else requests=$REQUESTS_P16; fi

    log "P$pipeline: gyre via node1 (${RESP[1]}), $requests requests per test"
    bench "gyre1-P$pipeline" "${RESP[1]##*:}" "$requests" "$pipeline"
    bench_wait

    if ((SPREAD)); then
        log "P$pipeline: gyre via all 3 nodes at once, $((requests / 3)) requests each"
        for i in 1 2 3; do
            bench "gyre3-P$pipeline-n$i" "${RESP[i]##*:}" $((requests / 3)) "$pipeline"
        done
        bench_wait
    fi

    log "P$pipeline: redis-server, $requests requests per test"
    bench "redis-P$pipeline" "$REDIS_PORT" "$requests" "$pipeline"
    bench_wait

    for t in SET GET; do
        for target in gyre1 redis; do
            f=$WORK/$target-P$pipeline.csv
            RESULT[$target,$t,$pipeline,rps]=$(csv_field "$f" "$t" 2)
            RESULT[$target,$t,$pipeline,p50]=$(csv_field "$f" "$t" 5)
            RESULT[$target,$t,$pipeline,p99]=$(csv_field "$f" "$t" 7)
        done
        if ((SPREAD)); then
            files=("$WORK/gyre3-P$pipeline"-n[123].csv)
            RESULT[gyre3,$t,$pipeline,rps]=$(for f in "${files[@]}"; do csv_field "$f" "$t" 2; done | awk '{ s += $1 } END { printf "%.2f", s }')
            RESULT[gyre3,$t,$pipeline,p50]=$(for f in "${files[@]}"; do csv_field "$f" "$t" 5; done | sort -g | tail -n1)
            RESULT[gyre3,$t,$pipeline,p99]=$(for f in "${files[@]}"; do csv_field "$f" "$t" 7; done | sort -g | tail -n1)
        fi
    done
done

# --- report ----------------------------------------------------------------
FORMAT='%-4s %-10s %3s  %11s %7s %7s  %11s %7s %7s  %6s\n'
row() {
    local g=$1 label=$2 t=$3 p=$4
    local grps=${RESULT[$g,$t,$p,rps]:-} rrps=${RESULT[redis,$t,$p,rps]:-}
    local ratio=-
    if [[ -n $grps && -n $rrps ]]; then
        ratio=$(awk -v a="$grps" -v b="$rrps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    fi
    # shellcheck disable=SC2059
    printf "$FORMAT" "$t" "$label" "$p" \
        "${grps:--}" "${RESULT[$g,$t,$p,p50]:--}" "${RESULT[$g,$t,$p,p99]:--}" \
        "${rrps:--}" "${RESULT[redis,$t,$p,p50]:--}" "${RESULT[redis,$t,$p,p99]:--}" "$ratio"
}

# Gyre counts every key operation by outcome; redis-benchmark counts an
# error reply as a request served, so the errors are read from the servers.
gyre_counts() {
    local i
    for i in 1 2 3; do
        curl -s "http://${HTTP[i]}/metrics"
    done | awk '{ line = tolower($0) }
        line ~ /^gyre_requests_total\{/ && line ~ /front="resp"/ {
            if (line ~ /outcome="ok"/) ok += $NF; else bad += $NF
        } END { printf "%d served ok, %d not ok\n", ok, bad }'
}
redis_errors=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" INFO stats | tr -d '\r' |
    sed -n 's/^total_error_replies://p')

echo
echo "gyre $("$GYRE_BIN" --version | awk '{ print $2 }') (3 nodes, n_val 3, R=W=2, fsync group) vs redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') (no persistence); $(redis-benchmark --version)"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $CLIENTS clients, ${VALUE_SIZE}-byte values, -r $KEYSPACE, requests per test: P1 $REQUESTS_P1, P16 $REQUESTS_P16"
echo "gyre-1node: all requests to node1's RESP port ${RESP[1]} (it coordinates; each write still reaches all 3 replicas)"
if ((SPREAD)); then
    echo "gyre-3node: 3 redis-benchmark processes at once, one per node, a third of the requests each; ops/s summed, p50/p99 the worst of the three"
fi
echo "CPU busy before starting: ${BUSY_BEFORE}%; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "latencies in ms; ratio = gyre ops/s / redis ops/s"
echo
# shellcheck disable=SC2059
printf "$FORMAT" test gyre P "gyre ops/s" p50 p99 "redis ops/s" p50 p99 ratio
for p in $PIPELINES; do
    for t in SET GET; do
        row gyre1 gyre-1node "$t" "$p"
        if ((SPREAD)); then row gyre3 gyre-3node "$t" "$p"; fi
    done
done
echo
echo "gyre RESP requests: $(gyre_counts); redis-server error replies: ${redis_errors:-?}"
