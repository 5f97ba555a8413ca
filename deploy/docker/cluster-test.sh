#!/usr/bin/env bash
# End-to-end test of the Compose cluster: builds the FROM scratch image
# (build.sh), forms the 3-node cluster of compose.yaml with init.sh under a
# compose project of its own, and checks that
#
#   0. each node holds its own certificate and key, the CA certificate and
#      the users file, and neither the CA key nor another node's key; a
#      client without a credential is refused (NOAUTH, 401);
#   1. a key SET through any node is read through every other, and keys
#      written through each node are read through all three (over the host
#      ports compose publishes);
#   2. with one node cut off (`docker network disconnect`), writes through
#      the other two succeed (the default bucket: n_val 3, W 2, R 2); once
#      it is connected again with its address and alias, every node's Merkle
#      roots (/v1/local/trees) become equal, and every key, the new ones and
#      the ones overwritten meanwhile, reads back through every node, the
#      one that was cut off included. It reports the seconds that took;
#   3. a node stopped and started again (`compose stop/start`) reports the
#      same node id, holds the same data (same Merkle roots as before the
#      stop) and serves every key;
#   4. a user added with `init.sh user` (which restarts the nodes one at a
#      time) writes through every node, and its role holds.
#
# The cluster is torn down (`init.sh destroy`: containers, data volumes,
# the project's CA) on exit, also when a check fails or on Ctrl-C; on
# failure the nodes' last log lines are printed first.
#
# Needs: bash 5, docker (a reachable engine), `docker compose` or
# docker-compose, cargo with the x86_64-unknown-linux-gnu target and
# static glibc (for build.sh, unless SKIP_BUILD=1), readelf (binutils),
# curl, redis-cli (Debian: apt-get install redis-tools). No registry: the
# image is FROM scratch. Test traffic goes to 127.0.0.1 and to the
# addresses of the containers this test started, nowhere else.
#
# Usage: deploy/docker/cluster-test.sh
# Environment:
#   CARGO_TARGET_DIR  as cargo reads it (build.sh)
#   GYRE_IMAGE        the image built and tested [gyre:cluster-test]
#   SKIP_BUILD=1      test GYRE_IMAGE as it is, without build.sh
#   PROJECT           compose project name [gyre-test-<pid>]
#   GYRE_SUBNET       the project network's subnet [a free 10.89.N.0/24]
#   KEYS              keys written while a node is cut off [300]
#   KEYS_PER_NODE     keys written through each node at first [20]
#   TIMEOUT           seconds any awaited condition may take [120]
#   CUT, RESTART      the node cut off [3] and the node restarted [2]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=${PROJECT:-gyre-test-$$}
KEYS=${KEYS:-300}
KEYS_PER_NODE=${KEYS_PER_NODE:-20}
TIMEOUT=${TIMEOUT:-120}
CUT=${CUT:-3}
RESTART=${RESTART:-2}
NODES=(1 2 3)

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FAIL: $*"
    exit 1
}
# Seconds since $1 (an $EPOCHREALTIME), one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# --- what the test needs ------------------------------------------------------

# Checks every tool up front and says how to get the missing ones.
check_needs() {
    local missing=()
    ((BASH_VERSINFO[0] >= 5)) || missing+=("bash 5 or newer (for EPOCHREALTIME)")
    command -v docker >/dev/null || missing+=("docker: https://docs.docker.com/engine/install/ (Debian: apt-get install docker.io)")
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null; then
        COMPOSE=(docker-compose)
    else
        missing+=("docker compose or docker-compose (Debian: apt-get install docker-compose)")
    fi
    command -v redis-cli >/dev/null || missing+=("redis-cli: apt-get install redis-tools")
    command -v curl >/dev/null || missing+=("curl: apt-get install curl")
    command -v readelf >/dev/null || missing+=("readelf (build.sh checks the binary is static): apt-get install binutils")
    if [[ ${SKIP_BUILD:-} != 1 ]]; then
        command -v cargo >/dev/null || missing+=("cargo (build.sh builds gyre): https://rustup.rs")
    fi
    if ((${#missing[@]})); then
        log "missing:"
        printf '  - %s\n' "${missing[@]}" >&2
        exit 2
    fi
    docker info >/dev/null 2>&1 || die "docker cannot reach its engine (is dockerd running, may this user use it?)"
}

# --- the network's subnet -------------------------------------------------------

ip2int() {
    local IFS=. a b c d
    read -r a b c d <<<"$1"
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
# Whether IPv4 CIDRs $1 and $2 (a bare address is a /32) overlap.
overlaps() {
    local a=${1%/*} b=${2%/*} al=32 bl=32 len mask
    [[ $1 == */* ]] && al=${1#*/}
    [[ $2 == */* ]] && bl=${2#*/}
    len=$((al < bl ? al : bl))
    mask=$(((0xffffffff << (32 - len)) & 0xffffffff))
    (($(($(ip2int "$a") & mask)) == $(($(ip2int "$b") & mask))))
}
# A 10.89.N.0/24 that no docker network and no host route uses.
free_subnet() {
    local used=() routes=() n cand u clash
    # shellcheck disable=SC2046 # one network id per word
    read -r -a used <<<"$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' \
        $(docker network ls -q) | tr '\n' ' ')"
    if command -v ip >/dev/null; then
        read -r -a routes <<<"$(ip -4 route show | awk '$1 ~ /^[0-9.\/]+$/ { print $1 }' | tr '\n' ' ')"
        used+=("${routes[@]}")
    fi
    for ((n = 57; n < 255; n++)); do
        cand=10.89.$n.0/24
        clash=
        for u in "${used[@]}"; do
            [[ $u == *:* ]] && continue
            if overlaps "$cand" "$u"; then
                clash=1
                break
            fi
        done
        [[ -n $clash ]] || {
            echo "$cand"
            return
        }
    done
    die "no free subnet in 10.89.0.0/16; set GYRE_SUBNET"
}

# --- the cluster ------------------------------------------------------------------

compose() { "${COMPOSE[@]}" -f "$HERE/compose.yaml" "$@"; }
init() { "$HERE/init.sh" "$@"; }

STARTED='' CLEANED=''
# Tears the project down; on failure shows the nodes' last words first.
cleanup() {
    local rc=$?
    [[ -n $CLEANED ]] && return
    CLEANED=1
    if ((rc != 0)) && [[ -n $STARTED ]]; then
        log "exit $rc: the nodes' last log lines"
        compose ps >&2 || true
        compose logs --no-color --tail=30 >&2 || true
    fi
    log "tearing down project $PROJECT (init.sh destroy)"
    init destroy >/dev/null 2>&1 || log "warning: init.sh destroy failed; see docker ps -a --filter label=com.docker.compose.project=$PROJECT"
}

CID=() # container id of node i
ID=()  # the node id it reports
IP=()  # its address on the project network
PUB=() # host:port of its published RESP port
NET=   # the project network's name

# The container of node $1 and its address; the published RESP ports.
find_nodes() {
    local i
    for i in "${NODES[@]}"; do
        CID[i]=$(compose ps -q "node$i")
        [[ -n ${CID[i]} ]] || die "no container for node$i"
        PUB[i]=$(compose port "node$i" 6379)
    done
    NET=$(docker inspect -f '{{range $n, $_ := .NetworkSettings.Networks}}{{$n}} {{end}}' "${CID[1]}")
    NET=${NET%% *}
    for i in "${NODES[@]}"; do find_ip "$i"; done
}
find_ip() {
    IP[$1]=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "${CID[$1]}")
    [[ -n ${IP[$1]} ]] || die "node$1 has no address on $NET"
}

TOKEN= # the admin's secret (init.sh made the user)

# Node $1's HTTP API, path $2 (on the project network), as the admin.
http() { curl -sf --max-time 5 -H "Authorization: Bearer $TOKEN" "http://${IP[$1]}:8080$2"; }
# redis-cli to node $1 on the project network (or to host:port $1), as the admin.
resp() {
    local at=$1
    shift
    [[ $at == *:* ]] || at=${IP[at]}:6379
    redis-cli --no-auth-warning --user admin --pass "$TOKEN" -h "${at%:*}" -p "${at##*:}" "$@"
}
# The files in node $1's directory $2 (certs, users), one a line, sorted
# (read with docker cp: the image has no shell).
files_in() { docker cp "${CID[$1]}:/$2" - | tar -t | sed -n "s|^$2/\\(..*\\)\$|\\1|p" | sort; }
# The node id node $1 reports on /health.
node_id() { http "$1" /health | sed -n 's/.*"node":"\([^"]*\)".*/\1/p'; }
# Whether node $1 answers /health with 200 (it holds a layout).
healthy() { http "$1" /health >/dev/null; }
# Node $1's Merkle roots, one `{"partition":…,"n_val":…,"root":…}` a line, sorted.
trees() {
    local body
    body=$(http "$1" /v1/local/trees) || return 1
    grep -o '{[^{}]*}' <<<"$body" | sort
}
# What node $1 says of member $2 in /v1/cluster (its JSON object).
member() {
    local body
    body=$(http "$1" /v1/cluster) || return 1
    grep -o "{\"id\":\"$2\"[^{}]*}" <<<"$body"
}

# --- keys -------------------------------------------------------------------------

declare -A WANT # key -> the value last written
WRITES=0

# Writes key=value pairs $2… through node (or host:port) $1, one SET each;
# fails unless every SET answers OK.
put() {
    local at=$1 lines=() kv out ok
    shift
    for kv in "$@"; do lines+=("SET ${kv%%=*} ${kv#*=}"); done
    out=$(printf '%s\n' "${lines[@]}" | resp "$at" 2>&1) || true
    ok=$(grep -cx OK <<<"$out" || true)
    ((ok == $#)) || die "through $at: $ok of $# SETs answered OK: $(grep -vx OK <<<"$out" | sort | uniq -c | head -3)"
    for kv in "$@"; do WANT[${kv%%=*}]=${kv#*=}; done
    WRITES=$((WRITES + $#))
}

# Whether every key of WANT reads back, with its value, through node (or
# host:port) $1 (GET, the default bucket's R=2). Says what differs.
reads_all() {
    local keys got want bad
    mapfile -t keys < <(printf '%s\n' "${!WANT[@]}" | sort)
    got=$(resp "$1" MGET "${keys[@]}" 2>&1) || {
        echo "MGET through $1 failed: $got"
        return 1
    }
    want=$(for k in "${keys[@]}"; do printf '%s\n' "${WANT[$k]}"; done)
    [[ $got == "$want" ]] && return 0
    bad=$(paste <(printf '%s\n' "${keys[@]}") <(printf '%s\n' "$got") <(printf '%s\n' "$want") |
        awk -F '\t' '$2 != $3 { n++; if (n == 1) first = $1 " got \"" $2 "\" want \"" $3 "\"" } END { print n + 0 " keys differ, first " first }')
    echo "through $1: $bad"
    return 1
}

# --- waiting ----------------------------------------------------------------------

# Runs `$@` every 200 ms until it succeeds; fails the test with its last
# words after TIMEOUT seconds. (In `$@`, errexit is off: conditions return
# their failure themselves.)
wait_for() {
    local what=$1 deadline=$((SECONDS + TIMEOUT)) out
    shift
    until out=$("$@" 2>&1); do
        ((SECONDS < deadline)) || die "no $what after ${TIMEOUT}s: $out"
        sleep 0.2
    done
}

# Whether every node answers the same, non-empty list of Merkle roots.
roots_equal() {
    local first other i
    first=$(trees "${NODES[0]}") || {
        echo "node${NODES[0]} does not answer /v1/local/trees"
        return 1
    }
    [[ -n $first ]] || {
        echo "node${NODES[0]} has no trees"
        return 1
    }
    for i in "${NODES[@]:1}"; do
        other=$(trees "$i") || {
            echo "node$i does not answer /v1/local/trees"
            return 1
        }
        [[ $other == "$first" ]] || {
            echo "node${NODES[0]} and node$i differ in $(comm -3 <(echo "$first") <(echo "$other") | wc -l) tree lines"
            return 1
        }
    done
}
# Whether node $1 holds the Merkle roots $2.
roots_are() {
    local now
    now=$(trees "$1") || {
        echo "node$1 does not answer /v1/local/trees"
        return 1
    }
    [[ $now == "$2" ]] || {
        echo "node$1's roots differ from before in $(comm -3 <(echo "$2") <(echo "$now") | wc -l) lines"
        return 1
    }
}
# Whether node $1 considers member $2 up ($3 = true) or down (false).
sees() {
    local m
    m=$(member "$1" "$2") || {
        echo "node$1 does not answer /v1/cluster"
        return 1
    }
    [[ $m == *"\"up\":$3"* ]] || {
        echo "node$1 says of $2: ${m:-nothing}"
        return 1
    }
}
# Whether every node but $1 sees node id $2 with up = $3.
others_see() {
    local i
    for i in "${NODES[@]}"; do
        ((i == $1)) || sees "$i" "$2" "$3" || return 1
    done
}

# --- the phases -------------------------------------------------------------------

build() {
    if [[ ${SKIP_BUILD:-} == 1 ]]; then
        docker image inspect "$GYRE_IMAGE" >/dev/null 2>&1 || die "SKIP_BUILD=1 but no image $GYRE_IMAGE"
        log "SKIP_BUILD=1: testing $GYRE_IMAGE as it is"
        return
    fi
    log "building $GYRE_IMAGE (build.sh; CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<repo>/target})"
    "$HERE/build.sh" "$GYRE_IMAGE" >&2
}

bring_up() {
    log "project $PROJECT, network $GYRE_SUBNET: init.sh up"
    STARTED=1
    init up >&2
    TOKEN=$(cat "$HERE/$PROJECT-admin.token") || die "init.sh left no admin secret"
    find_nodes
    local i
    for i in "${NODES[@]}"; do
        ID[i]=$(node_id "$i")
        log "node$i: id ${ID[i]}, ${IP[i]} on $NET, RESP published on ${PUB[i]}"
    done
}

# 0. Keys stay with their owners: each node holds the CA certificate, its
#    own certificate and key and the users file, never the CA key or the
#    admin's secret; ids differ. Without a credential a node serves nothing
#    but health.
keys_stay_with_owners() {
    local i files want unauth
    want=$(printf '%s\n' ca.pem node.key node.pem)
    for i in "${NODES[@]}"; do
        files=$(files_in "$i" certs) || die "cannot list node$i's /certs"
        [[ $files == "$want" ]] || die "node$i's /certs holds $(tr '\n' ' ' <<<"$files"), not $(tr '\n' ' ' <<<"$want")"
        files=$(files_in "$i" users) || die "cannot list node$i's /users"
        [[ $files == users.toml ]] || die "node$i's /users holds $(tr '\n' ' ' <<<"$files"), not users.toml"
    done
    [[ $(printf '%s\n' "${ID[@]}" | sort -u | wc -l) == "${#NODES[@]}" ]] || die "node ids repeat: ${ID[*]}"
    unauth=$(redis-cli -h "${PUB[1]%:*}" -p "${PUB[1]##*:}" GET probe 2>&1 || true)
    [[ $unauth == NOAUTH* ]] || die "GET without AUTH answered: $unauth"
    unauth=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://${IP[1]}:8080/v1/cluster")
    [[ $unauth == 401 ]] || die "GET /v1/cluster without a credential answered $unauth"
    log "ok: each node holds only ca.pem, its own node.pem and node.key, and users.toml; clients must authenticate"
}

# 1. Through the published ports: a key SET through each node is read
#    through every other; keys written through each are read through all.
each_node_serves() {
    local i j n got kvs
    for i in "${NODES[@]}"; do
        put "${PUB[i]}" "probe:$i=from-node$i"
        for j in "${NODES[@]}"; do
            ((j == i)) && continue
            got=$(resp "${PUB[j]}" GET "probe:$i" 2>&1 || true)
            [[ $got == "from-node$i" ]] || die "probe:$i SET through node$i, GET through node$j: '$got'"
        done
    done
    for i in "${NODES[@]}"; do
        kvs=()
        for ((n = 0; n < KEYS_PER_NODE; n++)); do kvs+=("node$i:$n=v0-node$i-$n"); done
        put "${PUB[i]}" "${kvs[@]}"
    done
    for i in "${NODES[@]}"; do
        reads_all "${PUB[i]}" >&2 || die "keys written through every node are not read through node$i"
    done
    log "ok: ${#WANT[@]} keys written through each node read through every node (published ports)"
}

# 2. Cut node CUT off, write through the others, connect it again, wait for
#    equal roots, read everything everywhere.
partition_heals() {
    local cut=$CUT up=() i n a kvs aliases=() args=() hints start
    for i in "${NODES[@]}"; do ((i == cut)) || up+=("$i"); done
    read -r -a aliases <<<"$(docker inspect -f "{{range (index .NetworkSettings.Networks \"$NET\").Aliases}}{{.}} {{end}}" "${CID[cut]}")"

    log "cutting node$cut (${IP[cut]}, aliases ${aliases[*]}) off $NET"
    docker network disconnect "$NET" "${CID[cut]}"
    wait_for "node$cut seen down by the others" others_see "$cut" "${ID[cut]}" false
    log "ok: node${up[0]} and node${up[1]} see node$cut down"

    # New keys, alternately through the two nodes left, and a new value for
    # every key written so far.
    kvs=()
    for ((n = 0; n < KEYS; n++)); do
        kvs+=("cut:$n=v1-cut-$n")
        if ((${#kvs[@]} == 50 || n == KEYS - 1)); then
            put "${up[n / 50 % 2]}" "${kvs[@]}"
            kvs=()
        fi
    done
    for i in "${NODES[@]}"; do
        kvs=()
        for ((n = 0; n < KEYS_PER_NODE; n++)); do kvs+=("node$i:$n=v1-node$i-$n"); done
        put "${up[i % 2]}" "${kvs[@]}" "probe:$i=v1-probe-$i"
    done
    for i in "${up[@]}"; do
        reads_all "$i" >&2 || die "writes made during the cut are not read through node$i"
    done
    hints=$(member "${up[0]}" "${ID[cut]}" | sed -n 's/.*"hints_pending":\([0-9]*\).*/\1/p' || true)
    log "ok: $((KEYS + ${#NODES[@]} * (KEYS_PER_NODE + 1))) writes with node$cut cut off (W=2); node${up[0]} holds ${hints:-?} hints for it"

    for a in "${aliases[@]}"; do args+=(--alias "$a"); done
    docker network connect --ip "${IP[cut]}" "${args[@]}" "$NET" "${CID[cut]}"
    start=$EPOCHREALTIME
    local was=${IP[cut]}
    find_ip "$cut"
    [[ ${IP[cut]} == "$was" ]] || die "node$cut came back on ${IP[cut]}, not $was"
    log "node$cut connected again on ${IP[cut]}; waiting for equal Merkle roots"
    wait_for "equal Merkle roots on every node" roots_equal
    CONVERGED=$(since "$start")
    log "ok: every node's Merkle roots are equal, ${CONVERGED}s after the reconnect"
    # Equal roots say the data is everywhere; a node's QUIC connections to
    # its peers may still be coming back (a read refused as unavailable for
    # a second or two after the heal), so reads are awaited too.
    for i in "${NODES[@]}"; do
        wait_for "every key read through node$i after the heal" reads_all "$i"
    done
    READS_BACK=$(since "$start")
    log "ok: all ${#WANT[@]} keys read back through every node, node$cut included, ${READS_BACK}s after the reconnect"
}

# 3. Stop node RESTART and start it again: same id, same roots, every key.
restart_keeps_id_and_data() {
    local r=$RESTART before_roots after_id start
    before_roots=$(trees "$r") || die "node$r does not answer /v1/local/trees"
    log "stopping node$r (${ID[r]})"
    compose stop "node$r" >&2
    wait_for "node${NODES[0]} seeing node$r down" others_see "$r" "${ID[r]}" false
    start=$EPOCHREALTIME
    compose start "node$r" >&2
    find_ip "$r"
    wait_for "node$r healthy after its restart" healthy "$r"
    after_id=$(node_id "$r")
    [[ $after_id == "${ID[r]}" ]] || die "node$r came back as $after_id, not ${ID[r]}"
    wait_for "node$r's roots of before its restart" roots_are "$r" "$before_roots"
    wait_for "every key read through the restarted node$r" reads_all "$r"
    RESTARTED=$(since "$start")
    wait_for "equal Merkle roots after the restart" roots_equal
    log "ok: node$r restarted (on ${IP[r]}) with the same id ${ID[r]} and data; serving every key ${RESTARTED}s after its start"
}

# 4. A user added with `init.sh user` (nodes restarted one at a time)
#    writes through every node with its own secret; its role holds.
added_user_reaches_every_node() {
    local made secret i got
    made=$(init user web --role readwrite --bucket default 2>&1) || die "init.sh user failed: $made"
    secret=$(grep -o 'web\.[A-Za-z0-9_-]*' <<<"$made" | head -1)
    [[ -n $secret ]] || die "init.sh user showed no secret: $made"
    find_nodes
    for i in "${NODES[@]}"; do
        wait_for "node$i serving after the rolling restart" healthy "$i"
        got=$(redis-cli --no-auth-warning --user web --pass "$secret" -h "${IP[i]}" SET "web:$i" "by-web" 2>&1)
        [[ $got == OK ]] || die "SET as web through node$i: $got"
        WANT[web:$i]=by-web
    done
    wait_for "every key read through every node after the rolling restart" reads_all "${NODES[0]}"
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $secret" \
        -X PUT -d '{"n_val":3}' "http://${IP[1]}:8080/v1/buckets/other")
    [[ $got == 403 ]] || die "a readwrite user changed a bucket: HTTP $got"
    log "ok: user web, added with init.sh user, writes through every node and may not change buckets"
}

main() {
    local t0=$EPOCHREALTIME t_build
    check_needs
    export GYRE_IMAGE=${GYRE_IMAGE:-gyre:cluster-test}
    export COMPOSE_PROJECT_NAME=$PROJECT GYRE_CLUSTER=$PROJECT
    GYRE_SUBNET=${GYRE_SUBNET:-}
    [[ -n $GYRE_SUBNET ]] || GYRE_SUBNET=$(free_subnet)
    export GYRE_SUBNET
    export READY_TIMEOUT=$TIMEOUT
    # Docker picks free host ports: nothing else on the host can collide.
    export GYRE_RESP_PORT_1='' GYRE_RESP_PORT_2='' GYRE_RESP_PORT_3=''
    export GYRE_HTTP_PORT_1='' GYRE_HTTP_PORT_2='' GYRE_HTTP_PORT_3=''
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    build
    t_build=$(since "$t0")
    local t1=$EPOCHREALTIME
    bring_up
    keys_stay_with_owners
    each_node_serves
    partition_heals
    restart_keeps_id_and_data
    added_user_reaches_every_node
    cleanup
    trap - EXIT

    cat <<TXT

cluster-test: PASS
  keys written       ${#WANT[@]} distinct, $WRITES writes ($KEYS with node$CUT cut off)
  convergence        ${CONVERGED}s from reconnect to equal Merkle roots, ${READS_BACK}s to every key read through every node
  restart            node$RESTART served every key ${RESTARTED}s after its start, same id
  time               build ${t_build}s, cluster test $(since "$t1")s, total $(since "$t0")s
TXT
}

CONVERGED='' READS_BACK='' RESTARTED=''
main "$@"
