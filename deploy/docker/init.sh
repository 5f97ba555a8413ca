#!/usr/bin/env bash
# Brings up the 3-node cluster of compose.yaml and forms it.
#
#   ./init.sh [up]    make the CA, the admin user and each node's certificate
#                     (once), start the nodes, and on first start join all
#                     three and commit the layout
#   ./init.sh status  `gyre cluster status` as node1 sees it
#   ./init.sh user NAME --role R [--bucket B]...
#                     add a client user (its secret is shown once) and
#                     restart the nodes one at a time to read it
#   ./init.sh down    stop and remove the containers (data and CA kept)
#   ./init.sh destroy the same, and remove the data volumes and the CA
#
# Keys stay with their owners: the CA key and the admin's secret live in
# the volume $GYRE_CERTS_VOLUME, which only this script's one-off
# containers mount; node X mounts its own $GYRE_CERTS_VOLUME-nodeX (its
# certificate and key from `gyre cert node`, and the CA certificate) and
# the users file's $GYRE_CERTS_VOLUME-users (names, roles and secret
# hashes), both read-only. `gyre` commands run in a one-off container in
# node1's network with the admin's secret, which no node holds. The secret
# is also kept next to this script, in ./<project>-admin.token.
#
# Needs the image (./build.sh), docker with compose, and curl.
# Environment: GYRE_IMAGE [gyre:latest], GYRE_CLUSTER [gyre],
# COMPOSE_PROJECT_NAME [gyre], READY_TIMEOUT seconds [60],
# GYRE_CERTS_VOLUME [<project>-certs, so gyre-certs for the default project],
# and compose.yaml's GYRE_SUBNET, GYRE_RESP_PORT_X, GYRE_HTTP_PORT_X (host
# ports; empty: Docker picks them, and this script asks compose which).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
export GYRE_IMAGE=${GYRE_IMAGE:-gyre:latest}
export GYRE_CLUSTER=${GYRE_CLUSTER:-gyre}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-gyre}
READY_TIMEOUT=${READY_TIMEOUT:-60}
# One CA per project: destroying one cluster must not take another's CA.
export GYRE_CERTS_VOLUME=${GYRE_CERTS_VOLUME:-$COMPOSE_PROJECT_NAME-certs}
CA_VOLUME=$GYRE_CERTS_VOLUME
USERS_VOLUME=$CA_VOLUME-users
NODES=(1 2 3)
# Node $1's certificate volume (compose.yaml names it so).
node_volume() { printf '%s-node%s' "$CA_VOLUME" "$1"; }
# The admin's secret, on the host (made with the CA).
TOKEN_FILE=$PWD/$COMPOSE_PROJECT_NAME-admin.token

if docker compose version >/dev/null 2>&1; then
    compose() { docker compose -f compose.yaml "$@"; }
else
    compose() { docker-compose -f compose.yaml "$@"; }
fi
# `gyre "$@"` in a one-off container in node1's network namespace (so
# --node http://127.0.0.1:8080 is node1), as the admin: the CA volume,
# holding the admin's secret, is mounted into it and into no node.
gyre() {
    local node1
    node1=$(compose ps -q node1)
    [[ -n $node1 ]] || die "node1 is not running (./init.sh up)"
    docker run --rm --network "container:$node1" -v "$CA_VOLUME:/certs:ro" \
        -e GYRE_TOKEN_FILE=/certs/admin.token -e GYRE_NODE=http://127.0.0.1:8080 \
        "$GYRE_IMAGE" "$@"
}
# Runs the image once with the CA volume on /certs and volume $1 (if not
# empty) on /data: both mount points belong to the image's user, so a
# fresh volume there is writable by it.
with_ca() {
    local data=() rw=$1
    shift
    [[ -z $rw ]] || data=(-v "$rw:/data")
    docker run --rm -v "$CA_VOLUME:/certs" "${data[@]}" "$GYRE_IMAGE" "$@"
}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Polls `$@` every 200 ms until it succeeds or READY_TIMEOUT passes.
poll() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# The host address (127.0.0.1:port) compose publishes node $1's port $2 on.
published() { compose port "node$1" "$2"; }
# Node $1's HTTP API from the host, as find_ports found it.
HTTP=()
http() { printf 'http://%s' "${HTTP[$1]}"; }
# Asks compose once which host ports the running nodes' HTTP APIs are on.
find_ports() {
    local i
    for i in "${NODES[@]}"; do
        HTTP[i]=$(published "$i" 8080 || true)
        [[ -n ${HTTP[i]} ]] || die "compose publishes no HTTP port for node$i (compose ps)"
    done
}
# The node id node $1 reports on /health (answered before the layout too).
node_id() {
    curl -s "$(http "$1")/health" | sed -n 's/.*"node":"\([^"]*\)".*/\1/p'
}
answers() { [[ -n $(node_id "$1") ]]; }
healthy() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$(http "$1")/health") == 200 ]]; }

# The CA, the admin user, and each node's certificate volume, once.
make_keys() {
    if ! docker volume inspect "$CA_VOLUME" >/dev/null 2>&1; then
        log "making the cluster CA in volume $CA_VOLUME"
        docker volume create "$CA_VOLUME" >/dev/null
        with_ca "" cert ca --cluster "$GYRE_CLUSTER" --out /certs
        # The first client user, an admin: the nodes listen beyond
        # loopback, so they refuse to start without users (protected
        # mode). Its secret is shown once, and kept next to this script.
        log "making the admin user"
        local made
        docker volume create "$USERS_VOLUME" >/dev/null
        made=$(with_ca "$USERS_VOLUME" user add admin --role admin --append /data/users.toml \
            --secret-file /certs/admin.token 2>&1)
        (
            umask 077
            sed -n 's/^ *\(admin\.[A-Za-z0-9_-]*\)$/\1/p' <<<"$made" >"$TOKEN_FILE"
        )
        [[ -s $TOKEN_FILE ]] || die "gyre user add gave no secret: $made"
    fi
    local i vol id
    for i in "${NODES[@]}"; do
        vol=$(node_volume "$i")
        docker volume inspect "$vol" >/dev/null 2>&1 && continue
        docker volume create "$vol" >/dev/null
        # A node's id is in its certificate; it keeps both as long as
        # this volume and its data volume live.
        id=$(with_ca "$vol" cert node --ca-dir /certs --out /data) ||
            { docker volume rm "$vol" >/dev/null; die "gyre cert node failed for node$i"; }
        log "node$i: certificate for node id $id in volume $vol"
    done
}

up() {
    docker image inspect "$GYRE_IMAGE" >/dev/null 2>&1 ||
        die "no image $GYRE_IMAGE: run ./build.sh first"
    make_keys

    compose up -d
    find_ports
    local i
    for i in "${NODES[@]}"; do
        poll answers "$i" || die "node$i does not answer on $(http "$i") (compose logs node$i)"
    done

    # Joins the three once node1 sees them, and commits; on a formed
    # cluster it changes nothing.
    gyre cluster form --expect 3 --timeout-secs "$READY_TIMEOUT"
    for i in "${NODES[@]}"; do
        poll healthy "$i" || die "node$i holds no layout after ${READY_TIMEOUT}s"
    done
    gyre cluster status
    echo
    for i in "${NODES[@]}"; do
        printf 'node%s  redis-cli -p %s    HTTP %s\n' "$i" "$(published "$i" 6379 | sed 's/.*://')" "$(http "$i")"
    done
    if [[ -s $TOKEN_FILE ]]; then
        printf 'The admin secret is in %s (redis-cli --user admin --pass "$(cat %s)", curl -H "Authorization: Bearer $(cat %s)")\n' \
            "$TOKEN_FILE" "$TOKEN_FILE" "$TOKEN_FILE"
    fi
}

# Adds a user to the users file and restarts the nodes one at a time
# (each serves again before the next stops) so that they read it.
add_user() {
    (($#)) || die "usage: $0 user NAME --role R [--bucket B]..."
    docker volume inspect "$USERS_VOLUME" >/dev/null 2>&1 || die "no users volume $USERS_VOLUME (./init.sh up)"
    with_ca "$USERS_VOLUME" user add "$@" --append /data/users.toml
    local i
    [[ -n $(compose ps -q node1) ]] || return 0
    find_ports
    for i in "${NODES[@]}"; do
        log "restarting node$i to read the users file"
        compose restart "node$i" >/dev/null
        find_ports
        poll healthy "$i" || die "node$i does not serve after its restart (compose logs node$i)"
    done
}

case ${1:-up} in
up) up ;;
status) gyre cluster status ;;
user) shift; add_user "$@" ;;
down) compose down ;;
destroy)
    compose down -v
    docker volume rm "$CA_VOLUME" "$USERS_VOLUME" >/dev/null 2>&1 || true
    for i in "${NODES[@]}"; do docker volume rm "$(node_volume "$i")" >/dev/null 2>&1 || true; done
    rm -f "$TOKEN_FILE"
    ;;
*) die "usage: $0 [up|status|user NAME --role R|down|destroy]" ;;
esac
