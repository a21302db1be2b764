#!/usr/bin/env bash
# Brings the whole platform up on this machine: PostgreSQL, Redis, the API,
# the edge (mediamtx), the router and a worker; migrates, creates an API key,
# a demo profile and stream, publishes a looping test stream into the edge,
# and prints where to publish and where to watch. Ctrl-C stops everything it
# started. Run it through `deploy/local/just dev` (which installs what is
# missing first).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
state="${root}/.dev/platform"
logs="${state}/logs"
mkdir -p "${logs}" "${state}/worker" "${state}/edge"
cd "${root}"

STEPS=9
n=0
step() { n=$((n + 1)); printf '\033[1;34m[%d/%d]\033[0m %s\n' "${n}" "${STEPS}" "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    printf '\n\033[1;34m==>\033[0m stopping the platform\n'
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
      for _ in $(seq 1 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "${pid}" 2>/dev/null || true
    done
  fi
  rm -f "${state}/pids"
}
trap cleanup EXIT
trap 'cleanup; echo "stopped."; exit 0' INT TERM

# A previous `just dev` that was killed hard may have left processes behind.
if [[ -f "${state}/pids" ]]; then
  while read -r pid; do kill -TERM "${pid}" 2>/dev/null || true; done < "${state}/pids"
  sleep 1
  rm -f "${state}/pids"
fi

API_ADDR="127.0.0.1:8080"; ROUTER_ADDR="127.0.0.1:8081"; WORKER_ADDR="127.0.0.1:8090"; EDGE_ADMIN="127.0.0.1:9990"
for port in 8080 8081 8090 9990 1935 8554 8889; do
  if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
    die "port ${port} is already in use on 127.0.0.1: stop what uses it (ss -ltnp 'sport = :${port}') and try again"
  fi
done

step "starting PostgreSQL and Redis"
deploy/local/setup.sh services

step "building bin/dionysia and bin/dionysia-worker"
just build

# Secrets are made once and kept in .dev/platform (0600); never printed.
if [[ ! -f "${state}/secrets.env" ]]; then
  umask 077
  {
    echo "DIONYSIA_EDGE_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40)"
    echo "DIONYSIA_WORKER_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40)"
    echo "DIONYSIA_PLAYBACK_KEYS=k1:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
  } > "${state}/secrets.env"
  umask 022
fi
set -a
# shellcheck disable=SC1091
source "${state}/secrets.env"
DIONYSIA_DATABASE_URL="${DIONYSIA_DATABASE_URL:-postgres://dionysia:dionysia@127.0.0.1:5432/dionysia?sslmode=disable}"
DIONYSIA_REDIS_URL="${DIONYSIA_REDIS_URL:-redis://127.0.0.1:6379/0}"
DIONYSIA_API_URL="http://${API_ADDR}"
DIONYSIA_PUBLIC_PLAYBACK_URL="http://${ROUTER_ADDR}"
DIONYSIA_PUBLIC_INGEST_HOST="127.0.0.1"
# So that a webhook can point at a receiver on this machine (docs/webhooks.md).
DIONYSIA_ALLOW_PRIVATE_TARGETS="${DIONYSIA_ALLOW_PRIVATE_TARGETS:-true}"
# Recordings (docs/recording.md): the API, the worker and the router share one store.
DIONYSIA_STORAGE_URL="${DIONYSIA_STORAGE_URL:-file://${root}/.dev/recordings}"
set +a
bin=("${root}/bin/dionysia")

step "migrating the database"
"${bin[@]}" migrate up > "${logs}/migrate.log" 2>&1 || { cat "${logs}/migrate.log"; die "migration failed"; }

start() { # name, command...
  local name="$1"; shift
  "$@" >> "${logs}/${name}.log" 2>&1 &
  pids+=("$!")
  echo "$!" >> "${state}/pids"
}
# supervise NAME COMMAND... is start for a process that must come back when it
# dies (a crash, kill -9), as systemd's Restart=always would do: the demo
# stream then resumes on the restarted worker, which is the platform's
# failover at work.
supervise() {
  local name="$1"; shift
  (
    child=0
    trap 'kill -TERM "${child}" 2>/dev/null; wait "${child}" 2>/dev/null; exit 0' TERM INT
    while true; do
      "$@" >> "${logs}/${name}.log" 2>&1 &
      child=$!
      rc=0
      wait "${child}" || rc=$?
      echo "dev.sh: ${name} exited with status ${rc} at $(date -u +%FT%TZ); starting it again" >> "${logs}/${name}.log"
      printf '\033[1;33mnote:\033[0m %s exited (status %d); starting it again, the demo stream resumes on it\n' "${name}" "${rc}"
      sleep 1
    done
  ) &
  pids+=("$!")
  echo "$!" >> "${state}/pids"
}
wait_ready() { # name, url, seconds
  local name="$1" url="$2" secs="$3" pid="${pids[-1]}"
  for _ in $(seq 1 $((secs * 5))); do
    curl -fsS -o /dev/null "${url}" 2>/dev/null && return 0
    kill -0 "${pid}" 2>/dev/null || { tail -n 30 "${logs}/${name}.log" >&2; die "${name} exited; its log is ${logs}/${name}.log"; }
    sleep 0.2
  done
  tail -n 30 "${logs}/${name}.log" >&2
  die "${name} not ready after ${secs}s; its log is ${logs}/${name}.log"
}

step "starting the API on http://${API_ADDR}"
DIONYSIA_API_ADDR="${API_ADDR}" start api "${bin[@]}" api
wait_ready api "http://${API_ADDR}/readyz" 30

# One admin key for this machine, kept in .dev/platform/api-key (0600).
key_file="${state}/api-key"
if [[ -f "${key_file}" ]] && curl -fsS -o /dev/null -H "Authorization: Bearer $(cat "${key_file}")" "http://${API_ADDR}/api/v1/streams?limit=1"; then
  :
else
  umask 077
  "${bin[@]}" api-key create --name "dev-$(hostname)-$(date +%s)" > "${key_file}" 2>> "${logs}/migrate.log"
  umask 022
fi
export DIONYSIA_API_KEY
DIONYSIA_API_KEY="$(cat "${key_file}")"

step "starting the edge (mediamtx) on rtmp://127.0.0.1:1935, srt://127.0.0.1:8890"
start edge "${bin[@]}" edge --id "dev-edge" --mediamtx "${root}/bin/mediamtx" --work-dir "${state}/edge" \
  --advertise-host 127.0.0.1 --admin-addr "${EDGE_ADMIN}"
wait_ready edge "http://${EDGE_ADMIN}/readyz" 30

step "starting the router on http://${ROUTER_ADDR}"
DIONYSIA_ROUTER_ADDR="${ROUTER_ADDR}" start router "${bin[@]}" router
wait_ready router "http://${ROUTER_ADDR}/readyz" 30

step "starting a worker (probing its hardware) with its origin on http://${WORKER_ADDR}"
supervise worker "${root}/bin/dionysia-worker" --id "dev-worker" --origin-addr "${WORKER_ADDR}" --data-dir "${state}/worker"
wait_ready worker "http://${WORKER_ADDR}/readyz" 60

step "creating the demo stream"
# A ladder a 2-core machine transcodes in real time from the 1080p60 clip
# (just bench: the built-in 720p ladder runs at ~0.75x real time there). On a
# bigger machine, use the built-in profiles: --profile 720p or 1080p.
if ! "${bin[@]}" profiles get demo -o json > /dev/null 2>&1; then
  cat > "${state}/demo-profile.json" <<'JSON'
{"renditions":[
 {"name":"480p","width":854,"height":480,"video_bitrate_kbps":1200,"frame_rate":30,"preset":"superfast"},
 {"name":"360p","width":640,"height":360,"video_bitrate_kbps":700,"frame_rate":30,"preset":"superfast"}],
 "audio":{"codec":"aac","bitrate_kbps":128,"channels":2,"sample_rate":48000}}
JSON
  "${bin[@]}" profiles create --name demo --file "${state}/demo-profile.json" > /dev/null
fi
stream_json="$("${bin[@]}" streams list -o json)"
id="$(jq -r '[.[] | select(.name == "demo")][0].id // empty' <<< "${stream_json}")"
if [[ -z "${id}" ]]; then
  id="$("${bin[@]}" streams create --name demo --profile demo --record automatic --dvr-window 300 -o json | jq -r .id)"
else
  # Reused from an earlier run, where it may have been disabled, signed or
  # moved to another profile: make it playable again.
  "${bin[@]}" streams update "${id}" --disabled=false --playback-policy public --profile demo \
    --outputs hls,dash --record automatic --dvr-window 300 > /dev/null || die "could not reset the demo stream ${id} to playable"
fi
stream_json="$("${bin[@]}" streams get "${id}" -o json)"
rtmp="$(jq -r .ingest.rtmp <<< "${stream_json}")"
srt="$(jq -r .ingest.srt <<< "${stream_json}")"
hls="$(jq -r .playback.hls <<< "${stream_json}")"
dash="$(jq -r .playback.dash <<< "${stream_json}")"
key="$(jq -r .stream_key <<< "${stream_json}")"

step "publishing a looping test stream to the edge"
clip="${root}/../shared/media/big_buck_bunny_1080p60_10s.mp4"
if [[ ! -f "${clip}" ]]; then
  clip="${root}/.dev/media/generated_1080p60_10s.mp4"
  if [[ ! -f "${clip}" ]]; then
    echo "    the shared clip is absent: generating a 10 s 1080p60 test clip with ffmpeg"
    mkdir -p "$(dirname "${clip}")"
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=60 \
      -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 -map 0:v -map 1:a \
      -c:v libx264 -preset veryfast -profile:v high -g 120 -pix_fmt yuv420p -c:a aac -ac 6 -b:a 192k "${clip}.tmp.mp4"
    mv "${clip}.tmp.mp4" "${clip}"
  fi
fi
publisher_index=${#pids[@]}
start publisher ffmpeg -hide_banner -loglevel warning -nostdin -re -stream_loop -1 -i "${clip}" -c copy -f flv "${rtmp}"
printf '    waiting for the first segments'
for _ in $(seq 1 150); do
  if curl -fsS -o /dev/null "${hls}" 2>/dev/null; then break; fi
  kill -0 "${pids[-1]}" 2>/dev/null || { tail -n 20 "${logs}/publisher.log" >&2; die "the publisher exited"; }
  printf '.'; sleep 0.2
done
echo
curl -fsS -o /dev/null "${hls}" || die "no playlist after 30 s: see ${logs}/worker.log"

preview="http://${ROUTER_ADDR}/play/${id}"
cat <<MSG

$(printf '\033[1;32m')Dionysia is up, and the demo stream is playing.$(printf '\033[0m')

  Preview page   ${preview}
  HLS            ${hls}
  DASH           ${dash}

  Publish from OBS:    Server ${rtmp%/*}   Stream key ${key}
  or from ffmpeg:      ffmpeg -re -i input.mp4 -c copy -f flv '${rtmp}'
  or over SRT:         ffmpeg -re -i input.mp4 -c copy -f mpegts '${srt}'
  (the demo publisher uses this key now: 'bin/dionysia streams disconnect ${id}' kicks it and
   frees the key; or create your own stream with 'bin/dionysia streams create --name mine')

  CLI:           export DIONYSIA_API_KEY=\$(cat ${key_file})
                 bin/dionysia streams list · bin/dionysia workers list
  Recordings:    the demo records (a 5-minute DVR window on the preview page's seek bar); each
                 session becomes an asset when it ends: bin/dionysia assets list, then
                 http://${ROUTER_ADDR}/play/vod/ASSET_ID (files in .dev/recordings, docs/recording.md)
  Thumbnail:     http://${ROUTER_ADDR}/live/${id}/thumbnail.jpg?width=640
  Webhooks:      bin/dionysia webhooks create --url http://127.0.0.1:9000/hook   (private targets are
                 allowed in dev: DIONYSIA_ALLOW_PRIVATE_TARGETS=true; see docs/webhooks.md)
  Logs:          ${logs}/

Press Ctrl-C to stop everything.
MSG

# Stay up until Ctrl-C, or until a platform process dies. The demo publisher
# may end (a disconnect or key rotation kicks it): that is only reported.
publisher_reported=0
while true; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      if [[ ${i} -eq ${publisher_index} ]]; then
        if [[ ${publisher_reported} -eq 0 ]]; then
          echo "note: the demo publisher stopped (kicked, or its key rotated); the platform keeps running"
          publisher_reported=1
        fi
        continue
      fi
      name="$(basename "$(ls -t "${logs}"/*.log | head -n 1)" .log)"
      die "a platform process (pid ${pids[i]}) exited; see ${logs}/ (most recent: ${name}.log)"
    fi
  done
  sleep 1
done
