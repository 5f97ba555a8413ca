#!/usr/bin/env bash
# The system tests: what needs more than the Rust toolchain. Run after the
# README's test command (`cargo nextest run --workspace`), which needs
# nothing but cargo.
#
#   redis_tools_work_unmodified   redis-cli and redis-benchmark (Debian's
#                                 redis-tools) against three real nodes
#   metrics_parse_cleanly         /metrics read by the OpenMetrics parser of
#                                 the Prometheus Python client (PyPI), in a
#                                 virtualenv under target/system-venv; the
#                                 Grafana dashboard's queries checked
#                                 against the families served
#   http_api_matches_its_openapi  schemathesis (PyPI, in target/schemathesis-venv)
#                                 fuzzes the HTTP API of three real nodes from
#                                 /v1/openapi.json: no 5xx, every answer as
#                                 documented
#   clients_use_tls               redis-cli --tls and curl --cacert against a
#                                 node whose client listeners speak TLS
#   faults_on_real_hosts          3 and 5 nodes in network namespaces of
#                                 their own (iproute2), a seeded nemesis of
#                                 kills, pauses, partitions and packet loss
#                                 (nftables), the history checked; needs
#                                 root. GYRE_NEMESIS_SEEDS, _SEED, _SECONDS
#                                 and _OUT make long runs (tests/README.md)
#   disk_full_loses_nothing       a node's data directory on a small tmpfs
#                                 filled up under load; needs root
#   deploy/kubernetes/validate.sh the Kubernetes manifests against the API
#                                 schemas and a security linter (PyPI:
#                                 kubernetes-validate, checkov), offline, in
#                                 target/k8s-venv
#
# Usage: tests/system.sh [--install]
#   --install  installs what is missing first (apt-get, as root; what CI does)
#
# Without --install it checks every need up front, and if one is missing
# says how to get it and exits 2 without running anything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

install=0
case ${1:-} in
    --install) install=1 ;;
    "") ;;
    *)
        echo "usage: tests/system.sh [--install]" >&2
        exit 2
        ;;
esac

# Each need: a command that must work, and the Debian package that has it.
NEEDS=(
    "redis-cli redis-tools"
    "redis-benchmark redis-tools"
    "python3 python3"
    "curl curl"
    "ip iproute2"
    "nft nftables"
)

missing_packages() {
    local need cmd pkg
    for need in "${NEEDS[@]}"; do
        read -r cmd pkg <<<"$need"
        command -v "$cmd" >/dev/null 2>&1 || echo "$pkg"
    done | sort -u
}

if [[ $(id -u) != 0 ]]; then
    echo "tests/system.sh needs root: faults_on_real_hosts makes network namespaces and nft rules" >&2
    exit 2
fi

mapfile -t missing < <(missing_packages)
if ((${#missing[@]})) && ((install)); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    mapfile -t missing < <(missing_packages)
fi
if ((${#missing[@]})); then
    {
        echo "tests/system.sh needs Debian packages that are not installed: ${missing[*]}"
        echo "  apt-get install ${missing[*]}     (or run tests/system.sh --install as root)"
    } >&2
    exit 2
fi

# The Python parser, in a virtualenv of its own (pinned).
venv=target/system-venv
if ! "$venv/bin/python" -c "import prometheus_client" >/dev/null 2>&1; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        if ((install)); then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$venv"
        else
            echo "tests/system.sh needs python3-venv: apt-get install python3-venv (or --install)" >&2
            exit 2
        fi
    fi
    "$venv/bin/pip" install -q "prometheus-client==0.21.1"
fi
export GYRE_PYTHON=$PWD/$venv/bin/python

# The API fuzzer, from the OpenAPI document, in a virtualenv of its own.
st_venv=target/schemathesis-venv
if ! [[ -x $st_venv/bin/schemathesis ]]; then
    python3 -m venv "$st_venv"
    "$st_venv/bin/pip" install -q "schemathesis==4.32.5"
fi
export GYRE_SCHEMATHESIS=$PWD/$st_venv/bin/schemathesis

# The Kubernetes manifest validators, in a virtualenv of their own (pinned;
# checkov brings many dependencies that need not meet the parser's).
k8s_venv=target/k8s-venv
if ! [[ -x $k8s_venv/bin/checkov && -x $k8s_venv/bin/kubernetes-validate ]]; then
    python3 -m venv "$k8s_venv"
    "$k8s_venv/bin/pip" install -q "kubernetes-validate==1.37.0" "checkov==3.3.30"
fi

if cargo nextest --version >/dev/null 2>&1; then
    run=(cargo nextest run --locked --profile ci)
else
    run=(cargo test --locked)
fi
# --workspace with the feature named by package: the dependencies resolve to
# the same features as in the README's test command, so they are reused from
# its build rather than built (and stored) a second time.
"${run[@]}" --workspace --features gyre/system-tests --test redis_tools_work_unmodified \
    --test metrics_parse_cleanly --test http_api_matches_its_openapi --test clients_use_tls \
    --test faults_on_real_hosts --test disk_full_loses_nothing

# The Kubernetes manifests, offline: API schemas and the security linter,
# with the Secrets made by the gyre binary that the tests above just built.
GYRE=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/gyre \
    VALIDATORS=$PWD/$k8s_venv/bin deploy/kubernetes/validate.sh
