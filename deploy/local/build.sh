#!/usr/bin/env bash
# Builds bin/dionysia (pure Go, CGO off) and bin/dionysia-worker (cgo,
# GStreamer), saying so while they build: the worker's first build compiles
# go-gst's cgo and takes about 5 minutes on 2 cores (cached afterwards).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "${root}"
# shellcheck source=lib.sh
source "${root}/deploy/local/lib.sh"

deploy/local/player-assets.sh
mkdir -p bin
long "building bin/dionysia (API, edge, router, CLI)" \
  env CGO_ENABLED=0 go build -trimpath -o bin/dionysia ./services/cmd/dionysia
long "building bin/dionysia-worker (cgo + GStreamer; about 5 min the first time, seconds once cached)" \
  go build -trimpath -o bin/dionysia-worker ./workers/cmd/dionysia-worker
