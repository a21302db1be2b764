# Images of the pure-Go control plane, built from the repository root:
#
#   docker build -f deploy/docker/services.Dockerfile --target services -t dionysia:dev .
#   docker build -f deploy/docker/services.Dockerfile --target edge     -t dionysia-edge:dev .
#
# services: the `dionysia` binary (CGO off) on distroless/static, non-root. One image
#           for `dionysia api`, `router`, `migrate`, `api-key`, `streams`, `profiles`, `workers`.
# edge:     the same plus the pinned mediamtx (adr/0002), which `dionysia edge` runs as a child.
#
# Both builds need the Go module proxy and the npm registry: the preview page embeds
# hls.js and dash.js from npm (deploy/local/player-assets.sh), and mediamtx v1.20.1 only
# builds with hls.min.js from npm added (deploy/local/build-mediamtx.sh).

ARG GO_IMAGE=golang:1.26-bookworm
# dash.js 5's dependencies declare node >= 20; bookworm's own nodejs is 18.
ARG NODE_IMAGE=node:22-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${NODE_IMAGE} AS node

# --- Go + node/npm ----------------------------------------------------------------------
FROM ${GO_IMAGE} AS build-base
# node is one binary and npm a JavaScript package: take both from the official image
# (same Debian release, so the same glibc).
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && node --version && npm --version
WORKDIR /src

# --- mediamtx, built by the same script as on a workstation -----------------------------
FROM build-base AS mediamtx
ARG MEDIAMTX_VERSION=v1.20.1
ARG HLSJS_VERSION=1.7.0
COPY deploy/local/build-mediamtx.sh deploy/local/lib.sh deploy/local/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    MEDIAMTX_VERSION="${MEDIAMTX_VERSION}" HLSJS_VERSION="${HLSJS_VERSION}" deploy/local/build-mediamtx.sh

# --- dionysia ---------------------------------------------------------------------------
FROM build-base AS build
# The preview players, pinned by services/internal/preview/package-lock.json.
COPY deploy/local/player-assets.sh deploy/local/player-assets.sh
COPY services/internal/preview/package.json services/internal/preview/package-lock.json services/internal/preview/
RUN deploy/local/player-assets.sh
COPY . .
# `go build` fetches only the modules the binary needs (a blanket `go mod download` would
# also fetch every optional driver of goose). The cache mounts (BuildKit, the default
# builder since Docker 23) keep modules and compiled packages between builds.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/dionysia ./services/cmd/dionysia \
 && /out/dionysia --help >/dev/null

# --- runtime: control plane -------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS services
COPY --from=build /out/dionysia /usr/local/bin/dionysia
# distroless "nonroot" is uid/gid 65532.
USER 65532:65532
# api 8080, router 8081 (the listen addresses default to loopback: set
# DIONYSIA_API_ADDR / DIONYSIA_ROUTER_ADDR to 0.0.0.0:PORT in a container).
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/dionysia"]
CMD ["--help"]

# --- runtime: ingest edge ---------------------------------------------------------------
FROM services AS edge
COPY --from=mediamtx /src/bin/mediamtx /usr/local/bin/mediamtx
ENV DIONYSIA_EDGE_MEDIAMTX=/usr/local/bin/mediamtx \
    DIONYSIA_EDGE_WORK_DIR=/tmp/dionysia-edge
# RTMP 1935/tcp, SRT 8890/udp, RTSP 8554/tcp, WHIP 8889/tcp, WebRTC ICE 8189/udp, admin 9990/tcp.
EXPOSE 1935/tcp 8890/udp 8554/tcp 8889/tcp 8189/udp 9990/tcp
CMD ["edge"]
