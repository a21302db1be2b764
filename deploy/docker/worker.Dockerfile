# Image of the transcoding worker (`dionysia-worker`, cgo + GStreamer 1.22), built from
# the repository root:
#
#   docker build -f deploy/docker/worker.Dockerfile --target worker     -t dionysia-worker:dev .
#   docker build -f deploy/docker/worker.Dockerfile --target worker-gpu -t dionysia-worker-gpu:dev .
#
# Debian bookworm is required, not only preferred: go-gst v1.4.0 is the only go-gst that
# builds against GStreamer 1.22 / GLib 2.74, which is what bookworm ships (adr/0003).
#
# worker:     CPU path (avdec_h264, videoconvertscale, x264enc). It also runs on an NVIDIA
#             host: the worker probes at start and uses NVENC only when a test encode passes.
# worker-gpu: the same files, plus NVIDIA_DRIVER_CAPABILITIES so that the NVIDIA container
#             runtime injects the video libraries (libnvidia-encode, libnvcuvid) next to CUDA.
#             The driver itself always comes from the host; nothing NVIDIA is in the image.

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build (cgo) ------------------------------------------------------------------------
FROM ${GO_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      pkg-config gcc libc6-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG VERSION=dev
# The first cgo build of go-gst takes minutes (about 4 min on 2 cores); the cache mounts
# (BuildKit, the default builder since Docker 23) keep it for the next build.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/dionysia-worker ./workers/cmd/dionysia-worker \
 && /out/dionysia-worker --version

# --- runtime ----------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS worker
# Runtime plugins only (no -dev packages): base/good/bad/ugly + libav give
# rtmp2src/srtsrc/flvdemux, avdec_h264, videoconvertscale, x264enc, avenc_aac and the
# nvcodec plugin (plugins-bad; it registers its elements only where a driver is loaded).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/dionysia --no-create-home \
      --shell /usr/sbin/nologin dionysia \
 && install -d -o dionysia -g dionysia -m 0750 /var/lib/dionysia /var/lib/dionysia/worker
COPY --from=build /out/dionysia-worker /usr/local/bin/dionysia-worker
# GST_REGISTRY_1_0: GStreamer's plugin cache, rebuilt in each new container. A cache
# written where no NVIDIA driver was loaded would keep hiding nvcodec's elements, so it
# is not kept on a volume. HOME: GStreamer and GLib look there for caches.
ENV HOME=/var/lib/dionysia \
    GST_REGISTRY_1_0=/tmp/gstreamer-registry.bin \
    DIONYSIA_WORKER_DATA_DIR=/var/lib/dionysia/worker \
    DIONYSIA_WORKER_ORIGIN_ADDR=0.0.0.0:8090
USER 10001:10001
WORKDIR /var/lib/dionysia
# Origin (HLS/DASH for the routers), /healthz, /readyz, /metrics.
EXPOSE 8090
# SIGTERM: stop taking tasks, release every stream lease (the control plane hands the
# streams to other workers at once), leave the fleet. Give it DIONYSIA_WORKER_SHUTDOWN_TIMEOUT
# (10 s) plus a few seconds before SIGKILL.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dionysia-worker"]

FROM worker AS worker-gpu
# NVIDIA_VISIBLE_DEVICES is deliberately not set here: the device request (compose
# `deploy.resources.reservations.devices`, or the Kubernetes device plugin for
# `nvidia.com/gpu`) sets it to the GPUs the scheduler granted. An image that says "all"
# would see every GPU of the host whenever nvidia is the default runtime.
# `video` is what makes the runtime mount NVENC/NVDEC (libnvidia-encode, libnvcuvid);
# the runtime's default is compute,utility only.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,video,utility
