# Shared helpers of the deploy/local scripts (sourced, not run).

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# long WHAT COMMAND... runs a step that takes minutes and says so: a line when
# it starts, one every 15 s while it runs (with the time so far), and one when
# it ends. The command's output goes to a log under .dev/logs; when it fails,
# the end of that log is printed and the calling script exits.
long() {
  local what="$1"; shift
  local logdir="${DIONYSIA_LOG_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.dev/logs}"
  mkdir -p "${logdir}"
  local log="${logdir}/$(tr -c 'a-zA-Z0-9\n' '-' <<< "${what}" | head -c 60).log"
  say "${what}"
  local start=${SECONDS}
  "$@" > "${log}" 2>&1 &
  local pid=$!
  while kill -0 "${pid}" 2>/dev/null; do
    for _ in $(seq 1 15); do
      sleep 1
      kill -0 "${pid}" 2>/dev/null || break
    done
    if kill -0 "${pid}" 2>/dev/null; then
      printf '    … still %s (%dm%02ds so far; log: %s)\n' "${what,}" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "${log}"
    fi
  done
  if ! wait "${pid}"; then
    tail -n 40 "${log}" >&2
    printf '\033[1;31merror:\033[0m %s failed after %ds; the full log is %s\n' "${what}" $((SECONDS - start)) "${log}" >&2
    exit 1
  fi
  printf '    done in %dm%02ds\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
}
