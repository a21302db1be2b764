#!/usr/bin/env bash
# Runs every benchmark (docs/performance.md) on this machine in one go and
# writes bench/results/<date>-<host>.md and the summary block of
# docs/performance.md. Arguments pass through to bench/cmd/dionysia-bench,
# e.g. `deploy/local/bench.sh -quick` or `-sections transcode,routing -runs 5`.
# Needs what `just setup` installs plus nginx (installed here when missing)
# and the binaries of `just build`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${root}"
say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

deploy/local/setup.sh services

if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  if [[ ${DIONYSIA_SKIP_APT:-} == 1 ]]; then
    echo "warning: nginx is missing and DIONYSIA_SKIP_APT=1: the routing section will lack its nginx column" >&2
  else
    say "installing nginx-light (the routing benchmark's reference)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
  fi
fi
[[ -x bin/mediamtx ]] || deploy/local/build-mediamtx.sh
[[ -x bin/weed ]] || deploy/local/build-seaweedfs.sh   # the storage section's S3 server
# `just bench` builds these first (`just build`); when run alone, build what is missing.
mkdir -p bin
if [[ ! -x bin/dionysia ]]; then
  say "building bin/dionysia"
  deploy/local/player-assets.sh
  CGO_ENABLED=0 go build -trimpath -o bin/dionysia ./services/cmd/dionysia
fi
if [[ ! -x bin/dionysia-worker ]]; then
  say "building bin/dionysia-worker (the first cgo build takes ~4 min)"
  go build -trimpath -o bin/dionysia-worker ./workers/cmd/dionysia-worker
fi
say "building the benchmark programs into bin/bench"
mkdir -p bin/bench
go build -trimpath -o bin/bench/dionysia-bench-transcode ./workers/cmd/dionysia-bench-transcode
CGO_ENABLED=0 go build -trimpath -o bin/bench/origin ./workers/internal/origin/standalone
CGO_ENABLED=0 go build -trimpath -o bin/bench/dionysia-bench ./bench/cmd/dionysia-bench
exec bin/bench/dionysia-bench "$@"
