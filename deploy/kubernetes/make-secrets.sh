#!/usr/bin/env bash
# Makes the Secrets the StatefulSet and the form Job mount, with `gyre cert`
# and `gyre user add`:
#   gyre-ca     ca.pem: the cluster CA certificate (every node trusts it)
#   gyre-nodes  gyre-<i>.pem and gyre-<i>.key: one certificate per pod, its
#               node id inside
#   gyre-users  users.toml: the client users every node accepts (an `admin`
#               to begin with; add more with `gyre user add` and re-run)
#   gyre-admin  token: the admin's secret, for the form Job (and you)
# and writes them as one manifest to apply (it holds private keys: keep it
# out of version control, or feed it to your secret store instead).
#
# The CA key stays where this runs (in --ca-dir): whoever holds it can add
# nodes to the cluster, so no node gets it.
#
# Usage: make-secrets.sh [--nodes N] [--cluster NAME] [--ca-dir DIR] [--out FILE]
#   --nodes    pods to issue certificates for [3]; run again with a larger N
#              when scaling up (existing certificates are kept)
#   --cluster  the cluster name, as in configmap.yaml's GYRE_CLUSTER [gyre]
#   --ca-dir   where the CA is (made there if missing) and node
#              certificates are kept [./gyre-ca]
#   --out      the manifest to write [./secrets.yaml]
# Environment: GYRE, the gyre binary [gyre on PATH].
set -euo pipefail

nodes=3 cluster=gyre ca_dir=./gyre-ca out=./secrets.yaml
while (($#)); do
    case $1 in
        --nodes) nodes=$2; shift 2 ;;
        --cluster) cluster=$2; shift 2 ;;
        --ca-dir) ca_dir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--nodes N] [--cluster NAME] [--ca-dir DIR] [--out FILE]" >&2; exit 2 ;;
    esac
done
[[ $nodes =~ ^[1-9][0-9]*$ ]] || { echo "--nodes: a positive number, not $nodes" >&2; exit 2; }
gyre=${GYRE:-gyre}

if [[ ! -f $ca_dir/ca.key ]]; then
    "$gyre" cert ca --cluster "$cluster" --out "$ca_dir" >/dev/null
fi
for ((i = 0; i < nodes; i++)); do
    # A pod keeps its certificate (its id) as long as its volume lives.
    if [[ ! -f $ca_dir/gyre-$i/node.pem ]]; then
        "$gyre" cert node --ca-dir "$ca_dir" --out "$ca_dir/gyre-$i" >/dev/null
    fi
done

# The first client user, an admin: without users the nodes, which listen
# beyond loopback, refuse to start (protected mode). More users: append
# `gyre user add NAME --role R` to $ca_dir/users.toml and run this again.
if [[ ! -f $ca_dir/users.toml ]]; then
    (
        umask 077
        "$gyre" user add admin --role admin >"$ca_dir/users.toml" 2>"$ca_dir/admin.out"
        sed -n 's/^ *\(admin\.[A-Za-z0-9_-]*\)$/\1/p' "$ca_dir/admin.out" >"$ca_dir/admin.token"
        rm "$ca_dir/admin.out"
    )
    [[ -s $ca_dir/admin.token ]] || { echo "no admin secret from gyre user add" >&2; exit 1; }
fi

b64() { base64 -w0 <"$1"; }
# The start of Secret $1, up to its `data:` (the entries follow, indented).
secret() {
    cat <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: $1
  namespace: gyre
  labels:
    app.kubernetes.io/name: gyre
type: Opaque
data:
YAML
}
umask 077
{
    echo "# Made by make-secrets.sh for cluster \"$cluster\": the CA certificate and"
    echo "# $nodes node certificates with their keys. Private: do not commit."
    secret gyre-ca
    printf '  ca.pem: %s\n' "$(b64 "$ca_dir/ca.pem")"
    secret gyre-nodes
    for ((i = 0; i < nodes; i++)); do
        printf '  gyre-%d.pem: %s\n' "$i" "$(b64 "$ca_dir/gyre-$i/node.pem")"
        printf '  gyre-%d.key: %s\n' "$i" "$(b64 "$ca_dir/gyre-$i/node.key")"
    done
    secret gyre-users
    printf '  users.toml: %s\n' "$(b64 "$ca_dir/users.toml")"
    secret gyre-admin
    printf '  token: %s\n' "$(b64 "$ca_dir/admin.token")"
} >"$out"
echo "wrote $out: the CA certificate, $nodes node certificates and the client users (the CA key and the admin's secret stay in $ca_dir: admin.token)"
