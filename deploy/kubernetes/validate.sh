#!/usr/bin/env bash
# Checks the manifests offline, as CI does (tests/system.sh runs this):
#   - every resource against the Kubernetes API schemas (kubernetes-validate
#     --strict: unknown fields are errors), the Secrets make-secrets.sh
#     writes included;
#   - the security linter checkov over all of them. A finding not fixed is
#     explained where it is skipped (checkov.io/skip annotations).
# Both come from PyPI and need no network once installed.
#
# Usage: deploy/kubernetes/validate.sh
# Environment: GYRE the gyre binary [gyre on PATH]; VALIDATORS the directory
# holding kubernetes-validate and checkov [found on PATH].
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${VALIDATORS:+$VALIDATORS/}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here"/*.yaml "$work/"
rm -f "$work/secrets.yaml" "$work/kustomization.yaml"
"$here/make-secrets.sh" --ca-dir "$work/ca" --out "$work/secrets.yaml" >/dev/null
rm -rf "$work/ca"

echo "== Kubernetes API schemas (kubernetes-validate --strict)"
"${bin}kubernetes-validate" --strict "$work"/*.yaml

echo "== security linter (checkov)"
"${bin}checkov" --quiet --compact --skip-download --framework kubernetes -d "$work"
