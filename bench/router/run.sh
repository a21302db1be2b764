#!/usr/bin/env sh
# Router benchmark: throughput and added p50/p99 latency of the playback router
# against fetching the same files straight from the origin, in the same run.
# Needs Redis (default DB 5), ffmpeg and the go tool. Arguments pass through,
# e.g. bench/router/run.sh -c 16 -d 10s
set -eu
cd "$(dirname "$0")/../.."
exec go run ./services/cmd/bench-router "$@"
