#!/usr/bin/env bash
# Installs the players of the preview page (hls.js, dash.js) from npm at the
# versions pinned in services/internal/preview/package-lock.json and copies
# them where the dionysia binary embeds them from. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${root}/services/internal/preview"
vendor="${dir}/assets/vendor"
stamp="${vendor}/.lock.sha256"
want="$(sha256sum "${dir}/package-lock.json" | cut -d' ' -f1)"
if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" && -f "${vendor}/hls.min.js" && -f "${vendor}/dash.mediaplayer.min.js" ]]; then
  exit 0
fi
echo "installing preview players (hls.js, dash.js) from npm"
(cd "${dir}" && npm ci --silent --no-audit --no-fund >/dev/null)
mkdir -p "${vendor}"
cp "${dir}/node_modules/hls.js/dist/hls.min.js" "${vendor}/hls.min.js"
cp "${dir}/node_modules/dashjs/dist/modern/umd/dash.mediaplayer.min.js" "${vendor}/dash.mediaplayer.min.js"
printf '%s' "${want}" > "${stamp}"
