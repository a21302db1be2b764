#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 / Ubuntu machine for Dionysia development,
# tests and the one-machine platform. Safe to run again and again: every step
# checks first and only does what is missing.
#
#   setup.sh deps       install apt packages, just, Go tools, mediamtx, npm test deps
#   setup.sh services   start local PostgreSQL and Redis (no systemd needed) and
#                       create the dionysia role and databases
#   setup.sh all        both (default)
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

APT_PACKAGES=(
  pkg-config gcc git curl ca-certificates jq procps
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  postgresql redis-server ffmpeg chromium nodejs npm
)

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    # node/npm may come from elsewhere (nvm, nodesource): accept the commands.
    if [[ $p == nodejs ]] && command -v node >/dev/null; then continue; fi
    if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "apt packages: all present"
    return
  fi
  if [[ ${DIONYSIA_SKIP_APT:-} == 1 ]]; then
    echo "error: missing apt packages: ${missing[*]}" >&2
    exit 1
  fi
  say "installing apt packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
  say "installing just ${JUST_VERSION} (npm package rust-just)"
  npm install -g --silent "rust-just@${JUST_VERSION}" >/dev/null
  say "just: $(just --version)"
}

install_go_tools() {
  mkdir -p "${tools}"
  if [[ ! -x "${tools}/sqlc" ]] || [[ "$("${tools}/sqlc" version 2>/dev/null)" != "${SQLC_VERSION}" ]]; then
    say "building sqlc ${SQLC_VERSION} into bin/tools (about 2 min, once)"
    GOBIN="${tools}" GOWORK=off go install "github.com/sqlc-dev/sqlc/cmd/sqlc@${SQLC_VERSION}"
  fi
  say "sqlc: $("${tools}/sqlc" version)"
}

install_npm_deps() {
  "${root}/deploy/local/player-assets.sh"
  if [[ -f "${root}/e2e/package-lock.json" ]] && [[ ! -d "${root}/e2e/node_modules" ]]; then
    say "installing e2e npm packages"
    (cd "${root}/e2e" && npm ci --silent --no-audit --no-fund >/dev/null)
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

deps() {
  install_apt
  install_go
  install_just
  install_go_tools
  "${root}/deploy/local/build-mediamtx.sh"
  install_npm_deps
}

services() {
  start_postgres
  start_redis
}

case "${1:-all}" in
  deps) deps ;;
  services) services ;;
  all) deps; services ;;
  *) echo "usage: $0 [deps|services|all]" >&2; exit 2 ;;
esac
