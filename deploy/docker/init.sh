#!/usr/bin/env bash
# Brings up the 3-node cluster of compose.yaml and forms it.
#
#   ./init.sh [up]    make the CA (once), start the nodes, and on first start
#                     join all three and commit the layout
#   ./init.sh status  `gyre cluster status` as node1 sees it
#   ./init.sh down    stop and remove the containers (data and CA kept)
#   ./init.sh destroy the same, and remove the data volumes and the CA
#
# Needs the image (./build.sh), docker with compose, and curl.
# Environment: GYRE_IMAGE [gyre:latest], GYRE_CLUSTER [gyre],
# COMPOSE_PROJECT_NAME [gyre], READY_TIMEOUT seconds [60].
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
export GYRE_IMAGE=${GYRE_IMAGE:-gyre:latest}
export GYRE_CLUSTER=${GYRE_CLUSTER:-gyre}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-gyre}
READY_TIMEOUT=${READY_TIMEOUT:-60}
CERTS_VOLUME=gyre-certs

if docker compose version >/dev/null 2>&1; then
    compose() { docker compose -f compose.yaml "$@"; }
else
    compose() { docker-compose -f compose.yaml "$@"; }
fi
gyre() { compose exec -T node1 /gyre "$@"; }
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

# The node id node $1 reports on /health (answered before the layout too).
node_id() {
    curl -s "http://127.0.0.1:808$1/health" | sed -n 's/.*"node":"\([^"]*\)".*/\1/p'
}
# Stages a join through node1's HTTP admin API (what `gyre cluster join
# <id> --node http://127.0.0.1:8081` sends; the host needs no gyre binary).
join() {
    curl -sf -X POST -H 'content-type: application/json' \
        -d "{\"command\":\"join\",\"node\":\"$1\"}" \
        http://127.0.0.1:8081/v1/cluster/admin >/dev/null
}
answers() { [[ -n $(node_id "$1") ]]; }
healthy() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:808$1/health") == 200 ]]; }

up() {
    docker image inspect "$GYRE_IMAGE" >/dev/null 2>&1 ||
        die "no image $GYRE_IMAGE: run ./build.sh first"

    if ! docker volume inspect "$CERTS_VOLUME" >/dev/null 2>&1; then
        log "making the cluster CA in volume $CERTS_VOLUME"
        docker volume create "$CERTS_VOLUME" >/dev/null
        # The image's /certs belongs to the node user; the empty volume
        # takes that owner on this first mount.
        docker run --rm -v "$CERTS_VOLUME:/certs" "$GYRE_IMAGE" \
            cert ca --cluster "$GYRE_CLUSTER" --out /certs
    fi

    compose up -d
    local i
    for i in 1 2 3; do
        poll answers "$i" || die "node$i does not answer on 127.0.0.1:808$i (compose logs node$i)"
    done

    if healthy 1; then
        log "node1 already holds a layout; not changing it"
    else
        for i in 1 2 3; do
            local id
            id=$(node_id "$i")
            # Refused until gossip has told node1 of the node.
            poll join "$id" ||
                die "node1 did not learn of node$i ($id) within ${READY_TIMEOUT}s"
            log "staged node$i ($id)"
        done
        gyre cluster commit
    fi
    for i in 1 2 3; do
        poll healthy "$i" || die "node$i holds no layout after ${READY_TIMEOUT}s"
    done
    gyre cluster status
    cat <<'TXT'

Redis protocol: redis-cli -p 6381 | 6382 | 6383      HTTP: http://127.0.0.1:8081 | 8082 | 8083
TXT
}

case ${1:-up} in
up) up ;;
status) gyre cluster status ;;
down) compose down ;;
destroy)
    compose down -v
    docker volume rm "$CERTS_VOLUME" >/dev/null 2>&1 || true
    ;;
*) die "usage: $0 [up|status|down|destroy]" ;;
esac
