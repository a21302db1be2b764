#!/usr/bin/env bash
# Builds the pinned mediamtx into bin/mediamtx (idempotent).
#
# mediamtx cannot be imported as a Go library (its packages are internal/), so the
# edge service runs it as a supervised child process (adr/0002). Its module does
# not build as published: two //go:embed inputs are generated upstream and are
# missing from the module zip. We copy the module out of the module cache, add
# them (VERSION, and hls.min.js from the hls.js version mediamtx pins), and build.
set -euo pipefail

MEDIAMTX_VERSION="${MEDIAMTX_VERSION:-v1.20.1}"
HLSJS_VERSION="${HLSJS_VERSION:-1.7.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${root}/bin/mediamtx"

if [[ -x "${out}" ]] && [[ "$("${out}" --version 2>/dev/null || true)" == "${MEDIAMTX_VERSION}" ]]; then
  echo "mediamtx ${MEDIAMTX_VERSION} already built: ${out}"
  exit 0
fi

# shellcheck source=lib.sh
source "${root}/deploy/local/lib.sh"
work="$(mktemp -d)"
trap 'chmod -R u+w "${work}" 2>/dev/null; rm -rf "${work}"' EXIT

say "downloading mediamtx ${MEDIAMTX_VERSION} from the Go module proxy"
src="$(cd "${work}" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "github.com/bluenviron/mediamtx@${MEDIAMTX_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "${src}" || ! -d "${src}" ]]; then
  echo "error: could not download github.com/bluenviron/mediamtx@${MEDIAMTX_VERSION} through the Go module proxy" >&2
  exit 1
fi
cp -r "${src}" "${work}/mediamtx"
chmod -R u+w "${work}/mediamtx"

printf '%s' "${MEDIAMTX_VERSION}" > "${work}/mediamtx/internal/core/VERSION"

(cd "${work}" && npm pack --silent "hls.js@${HLSJS_VERSION}" >/dev/null)
tar -xzf "${work}/hls.js-${HLSJS_VERSION}.tgz" -C "${work}" package/dist/hls.min.js
cp "${work}/package/dist/hls.min.js" "${work}/mediamtx/internal/servers/hls/hls.min.js"

mkdir -p "${root}/bin"
long "building mediamtx ${MEDIAMTX_VERSION} into bin/mediamtx (about 2 min on 2 cores, once)" \
  bash -c "cd '${work}/mediamtx' && CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod go build -trimpath -o '${out}.tmp' ."
mv "${out}.tmp" "${out}"
echo "built ${out}: $("${out}" --version)"
