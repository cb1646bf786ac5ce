#!/usr/bin/env bash
# System packages the tests need on a fresh Debian machine: a PostgreSQL server (the storage
# tests start a throwaway one) and Debian's chromium (the headless dashboard test).
# Idempotent and quiet: installs only what is missing, prints apt's log only when it fails.
set -euo pipefail

# A one-node Slurm cluster (slurm-wlm, munge; slurmctld and slurmd started here) for
# tests/deploy/test_slurm.py; does nothing when it already answers.
bash "$(dirname "$0")/slurm.sh"

missing=()
# Server binaries, not just the client: the tests run initdb and pg_ctl themselves.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
    missing+=(postgresql)
fi
if [[ ! -x /usr/bin/chromium ]]; then
    missing+=(chromium)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "setup.sh: need root to install: ${missing[*]}" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: installing ${missing[*]} failed" >&2
    exit 1
fi
echo "setup.sh: installed ${missing[*]}"
