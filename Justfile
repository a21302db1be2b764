# Dionysia tasks. On a fresh machine run them through deploy/local/just, which
# installs everything first (see README).

set shell := ["bash", "-euo", "pipefail", "-c"]

root := justfile_directory()
# Every module of the workspace, from go.work; the end-to-end suite (e2e) last.
modules := `go list -m -f '{{.Dir}}' | sed "s|^$(pwd)/||" | grep -vx e2e | tr '\n' ' '` + "e2e"

# List the recipes.
default:
    @just --list

# Install what is missing (apt, just, sqlc, mediamtx, SeaweedFS, Chromium, npm packages) and start PostgreSQL and Redis.
setup:
    deploy/local/setup.sh all

# Build bin/dionysia (pure Go, CGO off) and bin/dionysia-worker (cgo, GStreamer).
build:
    deploy/local/build.sh

# Regenerate sqlc code from migrations/ and the queries.
generate:
    deploy/local/setup.sh sqlc
    cd services && ../bin/tools/sqlc generate

# Fail when the committed generated code is stale.
check-generated: generate
    @git diff --exit-code -- services/internal/store || (echo "sqlc output is stale: run 'just generate' and commit" >&2; exit 1)
    @test -z "$(git status --porcelain -- services/internal/store)" || (echo "sqlc generated untracked files: run 'just generate' and commit" >&2; git status --porcelain -- services/internal/store; exit 1)

# gofmt, go vet and a tidy go.mod (each module also builds on its own, outside go.work) over every module.
lint:
    @test -z "$(gofmt -l {{modules}})" || (echo "gofmt needed:" >&2; gofmt -l {{modules}}; exit 1)
    for m in {{modules}}; do (cd $m && go vet ./...); done
    @for m in {{modules}}; do (cd $m && GOWORK=off go mod tidy -diff >/dev/null) || { echo "go.mod of $m is not tidy: run 'cd $m && GOWORK=off go mod tidy' and commit" >&2; exit 1; }; done

# Every test: set-up, checks, build, then each module's tests, the e2e suite included.
test: setup check-generated lint check-packaging check-monitoring build
    for m in {{modules}}; do echo "== go test ./... in $m"; v=""; [ "$m" = e2e ] && v=-v; (cd $m && go test -race -count=1 -timeout 30m $v ./...); done

# Validate docker-compose.yml, the Dockerfiles, Kubernetes manifests and systemd units.
check-packaging:
    deploy/check-packaging.sh

# Check the Prometheus rules (promtool check and unit tests), scrape configs and the Grafana dashboard.
check-monitoring:
    deploy/check-monitoring.sh

# Apply database migrations.
migrate *args="up": build
    bin/dionysia migrate {{args}}

# Bring the whole platform up on this machine with a demo stream playing (Ctrl-C stops it).
dev:
    deploy/local/dev.sh

# Run every benchmark side by side with its reference; writes bench/results/<date>-<host>.md and docs/performance.md.
bench *args="": build
    deploy/local/bench.sh {{args}}
