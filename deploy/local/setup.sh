#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 / Ubuntu machine for Dionysia development,
# tests and the one-machine platform. Safe to run again and again: every step
# checks first and only does what is missing, and a step that takes minutes
# says so while it runs.
#
#   setup.sh base       what every recipe needs: apt packages, just, mediamtx,
#                       the preview page's players (deploy/local/just runs it)
#   setup.sh test-deps  base, plus what only the tests need: Chromium, promtool,
#                       sqlc, the end-to-end suite's npm packages, SeaweedFS
#   setup.sh weed       only SeaweedFS into bin/weed (the S3 server of the storage tests), SeaweedFS
#                       (bin/weed: the real S3 server the storage tests use)
#   setup.sh sqlc       only sqlc (just generate)
#   setup.sh weed       only SeaweedFS
#   setup.sh services   start local PostgreSQL and Redis (no systemd needed) and
#                       create the dionysia role and databases
#   setup.sh all        test-deps and services (default; just test runs it)
#
# Environment:
#   DIONYSIA_SKIP_APT=1   never call apt-get (report what is missing and fail instead)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${root}/.dev"            # local state: Redis data, logs (git-ignored)
tools="${root}/bin/tools"

SQLC_VERSION="v1.31.1"
JUST_VERSION="1.57.0"
PG_VERSION="15"
REDIS_PORT="${DIONYSIA_REDIS_PORT:-6379}"

# What the platform needs to build and run.
APT_BASE=(
  pkg-config gcc git curl ca-certificates jq procps
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  postgresql redis-server ffmpeg nodejs npm
)
# What only the tests need: the players run in headless Chromium; promtool (from
# prometheus) checks the alert rules. That package also enables a Prometheus server on :9090
# where systemd runs: install_promtool turns it off again when it installed it.
APT_TEST=(chromium)

# shellcheck source=lib.sh
source "${root}/deploy/local/lib.sh"

install_apt() { # packages...
  local missing=()
  for p in "$@"; do
    # node/npm may come from elsewhere (nvm, nodesource): accept the commands.
    if [[ $p == nodejs ]] && command -v node >/dev/null; then continue; fi
    if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "apt packages: all ${#} present"
    return
  fi
  if [[ ${DIONYSIA_SKIP_APT:-} == 1 ]]; then
    echo "error: missing apt packages: ${missing[*]}" >&2
    exit 1
  fi
  long "updating the apt package lists" as_root apt-get update -qq
  long "installing apt packages: ${missing[*]} (about 1 min and 550 MB the first time)" \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# install_promtool installs Debian's prometheus package for its promtool. The package also
# enables and starts a Prometheus server; the tests need only the tool, so a server this script
# brought in is disabled again (one installed before is left as it was).
install_promtool() {
  if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q "install ok installed"; then
    install_apt prometheus
    if [[ -d /run/systemd/system ]]; then
      as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  fi
  say "promtool: $(promtool --version 2>&1 | head -n 1)"
}

install_go() {
  if ! command -v go >/dev/null; then
    echo "error: Go is not installed (need Go >= $(sed -n 's/^go //p' "${root}/go.work")); see https://go.dev/doc/install" >&2
    exit 1
  fi
}

install_just() {
  if command -v just >/dev/null; then
    say "just: $(just --version)"
    return
  fi
  long "installing just ${JUST_VERSION} (npm package rust-just)" npm install -g --silent "rust-just@${JUST_VERSION}"
  say "just: $(just --version)"
}

install_sqlc() {
  mkdir -p "${tools}"
  if [[ ! -x "${tools}/sqlc" ]] || [[ "$("${tools}/sqlc" version 2>/dev/null)" != "${SQLC_VERSION}" ]]; then
    long "building sqlc ${SQLC_VERSION} into bin/tools (about 3 min on 2 cores, once; only the tests and just generate need it)" \
      env GOBIN="${tools}" GOWORK=off go install "github.com/sqlc-dev/sqlc/cmd/sqlc@${SQLC_VERSION}"
  fi
  say "sqlc: $("${tools}/sqlc" version)"
}

install_test_npm() {
  if [[ -f "${root}/e2e/package-lock.json" ]] && [[ ! -d "${root}/e2e/node_modules" ]]; then
    long "installing the end-to-end suite's npm packages" bash -c "cd '${root}/e2e' && npm ci --silent --no-audit --no-fund"
  fi
}

start_postgres() {
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^${PG_VERSION} main"; then
    say "creating PostgreSQL ${PG_VERSION} cluster"
    as_root pg_createcluster "${PG_VERSION}" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="${PG_VERSION}" '$1==v && $2=="main" {print $4}' | grep -q online; then
    say "starting PostgreSQL ${PG_VERSION}"
    as_root pg_ctlcluster "${PG_VERSION}" main start
  fi
  for _ in $(seq 1 50); do
    as_root runuser -u postgres -- pg_isready -q -h 127.0.0.1 && break
    sleep 0.2
  done
  as_root runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='dionysia'" | grep -q 1 ||
    as_root runuser -u postgres -- psql -qc "CREATE ROLE dionysia LOGIN PASSWORD 'dionysia' CREATEDB"
  for db in dionysia dionysia_test; do
    as_root runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='${db}'" | grep -q 1 ||
      as_root runuser -u postgres -- createdb -O dionysia "${db}"
  done
  say "PostgreSQL: postgres://dionysia:dionysia@127.0.0.1:5432/dionysia"
}

start_redis() {
  mkdir -p "${state}/redis"
  if redis-cli -p "${REDIS_PORT}" ping >/dev/null 2>&1; then
    say "Redis: already running on 127.0.0.1:${REDIS_PORT}"
    return
  fi
  say "starting Redis on 127.0.0.1:${REDIS_PORT}"
  redis-server --daemonize yes --bind 127.0.0.1 --port "${REDIS_PORT}" \
    --dir "${state}/redis" --appendonly yes --save "" \
    --pidfile "${state}/redis/redis.pid" --logfile "${state}/redis/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "${REDIS_PORT}" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  say "Redis: redis://127.0.0.1:${REDIS_PORT}/0"
}

base() {
  install_apt "${APT_BASE[@]}"
  install_go
  install_just
  "${root}/deploy/local/build-mediamtx.sh"
  "${root}/deploy/local/player-assets.sh"
}

test_deps() {
  base
  install_apt "${APT_TEST[@]}"
  install_promtool
  install_sqlc
  install_test_npm
  "${root}/deploy/local/build-seaweedfs.sh"
}

services() {
  start_postgres
  start_redis
}

case "${1:-all}" in
  base) base ;;
  test-deps) test_deps ;;
  sqlc) install_sqlc ;;
  weed) "${root}/deploy/local/build-seaweedfs.sh" ;;
  services) services ;;
  all) test_deps; services ;;
  *) echo "usage: $0 [base|test-deps|sqlc|weed|services|all]" >&2; exit 2 ;;
esac
