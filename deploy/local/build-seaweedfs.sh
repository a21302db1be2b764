#!/usr/bin/env bash
# Builds the pinned SeaweedFS into bin/weed (idempotent): the real S3 server the
# recording tests run against (docs/recording.md). SeaweedFS is Apache-2.0.
#
# `go install …/weed@version` is refused (the module's go.mod has replace
# directives), so we copy the module out of the module cache and build ./weed
# inside it, like build-mediamtx.sh does for mediamtx.
set -euo pipefail

SEAWEEDFS_VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${root}/bin/weed"
stamp="${root}/bin/.weed-version"

if [[ -x "${out}" && -f "${stamp}" && "$(cat "${stamp}")" == "${SEAWEEDFS_VERSION}" ]]; then
  echo "SeaweedFS ${SEAWEEDFS_VERSION} already built: ${out}"
  exit 0
fi

# shellcheck source=lib.sh
source "${root}/deploy/local/lib.sh"
work="$(mktemp -d)"
trap 'chmod -R u+w "${work}" 2>/dev/null; rm -rf "${work}"' EXIT

say "downloading SeaweedFS ${SEAWEEDFS_VERSION} from the Go module proxy"
src="$(cd "${work}" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "github.com/seaweedfs/seaweedfs@${SEAWEEDFS_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "${src}" || ! -d "${src}" ]]; then
  echo "error: could not download github.com/seaweedfs/seaweedfs@${SEAWEEDFS_VERSION} through the Go module proxy" >&2
  exit 1
fi
cp -r "${src}" "${work}/seaweedfs"
chmod -R u+w "${work}/seaweedfs"

mkdir -p "${root}/bin"
long "building SeaweedFS into bin/weed (about 10 min on 2 cores, once)" \
  bash -c "cd '${work}/seaweedfs' && CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod go build -trimpath -o '${out}.tmp' ./weed"
mv "${out}.tmp" "${out}"
printf '%s' "${SEAWEEDFS_VERSION}" > "${stamp}"
echo "built ${out}: $("${out}" version 2>/dev/null | head -n 1)"
