#!/usr/bin/env bash
# Brings up the 3-node cluster of compose.yaml and forms it.
#
#   ./init.sh [up]    make the CA (once), start the nodes, and on first start
#                     join all three and commit the layout
#   ./init.sh status  `gyre cluster status` as node1 sees it
#   ./init.sh down    stop and remove the containers (data and CA kept)
#   ./init.sh destroy the same, and remove the data volumes and the CA
#
# Needs the image (./build.sh), docker with compose, and curl. It makes an
# admin client user (the nodes refuse to serve beyond loopback without one)
# and keeps its secret in ./<project>-admin.token.
# Environment: GYRE_IMAGE [gyre:latest], GYRE_CLUSTER [gyre],
# COMPOSE_PROJECT_NAME [gyre], READY_TIMEOUT seconds [60].
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
export GYRE_IMAGE=${GYRE_IMAGE:-gyre:latest}
export GYRE_CLUSTER=${GYRE_CLUSTER:-gyre}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-gyre}
READY_TIMEOUT=${READY_TIMEOUT:-60}
CERTS_VOLUME=gyre-certs
# The admin's secret, on the host (made with the CA).
TOKEN_FILE=$PWD/$COMPOSE_PROJECT_NAME-admin.token

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
        # The first client user, an admin: the nodes listen beyond
        # loopback, so they refuse to start without users (protected
        # mode). Its secret is shown once, and kept next to this script.
        log "making the admin user"
        local made
        made=$(docker run --rm -v "$CERTS_VOLUME:/certs" "$GYRE_IMAGE" \
            user add admin --role admin --append /certs/users.toml \
            --secret-file /certs/admin.token 2>&1)
        (
            umask 077
            sed -n 's/^ *\(admin\.[A-Za-z0-9_-]*\)$/\1/p' <<<"$made" >"$TOKEN_FILE"
        )
        [[ -s $TOKEN_FILE ]] || die "gyre user add gave no secret: $made"
    fi

    compose up -d
    local i
    for i in 1 2 3; do
        poll answers "$i" || die "node$i does not answer on 127.0.0.1:808$i (compose logs node$i)"
    done

    # Joins the three once node1 sees them, and commits; on a formed
    # cluster it changes nothing. (node1 has GYRE_TOKEN_FILE: the admin.)
    gyre cluster form --expect 3 --timeout-secs "$READY_TIMEOUT"
    for i in 1 2 3; do
        poll healthy "$i" || die "node$i holds no layout after ${READY_TIMEOUT}s"
    done
    gyre cluster status
    cat <<'TXT'

Redis protocol: redis-cli -p 6381 | 6382 | 6383      HTTP: http://127.0.0.1:8081 | 8082 | 8083
TXT
    if [[ -s $TOKEN_FILE ]]; then
        printf 'The admin secret is in %s:\n  redis-cli -p 6381 --user admin --pass "$(cat %s)"\n  curl -H "Authorization: Bearer $(cat %s)" http://127.0.0.1:8081/v1/cluster\n' \
            "$TOKEN_FILE" "$TOKEN_FILE" "$TOKEN_FILE"
    fi
}

case ${1:-up} in
up) up ;;
status) gyre cluster status ;;
down) compose down ;;
destroy)
    compose down -v
    docker volume rm "$CERTS_VOLUME" >/dev/null 2>&1 || true
    rm -f "$TOKEN_FILE"
    ;;
*) die "usage: $0 [up|status|down|destroy]" ;;
esac
