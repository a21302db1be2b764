package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

// Options shape a platform.
type Options struct {
	Workers  int           // number of CPU workers; default 1
	LeaseTTL time.Duration // workers' ownership lease; default the worker's
	WebRTC   bool          // the edge takes WHIP publishers
	// Env is more environment for every process (e.g. a recordings store:
	// testkit.S3Server.Env); it wins over the suite's own.
	Env []string
}

// Platform is the harness's platform, owned by one test.
type Platform struct {
	*harness.Platform
	t      testing.TB
	LogDir string
}

// Worker is one worker process.
type Worker = harness.Worker

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds dionysia and dionysia-worker once per test process (the Go
// build cache makes it fast after `just build`, which builds with the same
// flags).
func Binaries(t testing.TB) string {
	t.Helper()
	root := testkit.RepoRoot(t)
	buildOnce.Do(func() {
		buildDir = filepath.Join(root, ".dev", "e2e", "bin")
		if err := os.MkdirAll(buildDir, 0o755); err != nil {
			buildErr = err
			return
		}
		ctx := context.Background()
		if out, err := harness.Run(ctx, 15*time.Minute, []string{"CGO_ENABLED=0"}, "go", "-C", root, "build", "-trimpath", "-o", filepath.Join(buildDir, "dionysia"), "./services/cmd/dionysia"); err != nil {
			buildErr = fmt.Errorf("building dionysia: %v\n%s", err, out)
			return
		}
		if out, err := harness.Run(ctx, 15*time.Minute, nil, "go", "-C", root, "build", "-trimpath", "-o", filepath.Join(buildDir, "dionysia-worker"), "./workers/cmd/dionysia-worker"); err != nil {
			buildErr = fmt.Errorf("building dionysia-worker: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// Start brings the platform up (harness.Start). Everything is stopped and
// removed at cleanup; when the test failed, every process's log tail is
// printed first. E2E_LOG_DIR keeps the logs, E2E_DATABASE_ADMIN_URL selects
// the PostgreSQL role that creates the platform's database.
func Start(t testing.TB, opts Options) *Platform {
	t.Helper()
	mediamtx := testkit.MediaMTX(t)
	testkit.FFmpeg(t)
	testkit.FFprobe(t)
	testkit.Program(t, "redis-server", "redis-server")
	logDir := os.Getenv("E2E_LOG_DIR")
	if logDir == "" {
		logDir = t.TempDir()
	} else {
		logDir = filepath.Join(logDir, strings.ReplaceAll(t.Name(), "/", "_"))
		_ = os.MkdirAll(logDir, 0o755)
	}
	t.Logf("process logs in %s", logDir)
	hp, err := harness.Start(context.Background(), harness.Options{
		BinDir: Binaries(t), MediaMTX: mediamtx, LogDir: logDir, WorkDir: t.TempDir(),
		AdminDatabaseURL: os.Getenv("E2E_DATABASE_ADMIN_URL"), Name: "e2e",
		Workers: opts.Workers, LeaseTTL: opts.LeaseTTL, WebRTC: opts.WebRTC,
		// A short reconnect grace keeps the suite quick: playlists end 3 s
		// after a publisher leaves for good.
		Env: append([]string{"DIONYSIA_API_RECONNECT_GRACE=3s"}, opts.Env...),
		// A source grace far above the suite's reconnect grace: a session's
		// playlists end only because the API told its worker to stop, never
		// because the worker gave up waiting for the publisher.
		WorkerArgs: []string{"--source-grace", "5m"},
	})
	t.Cleanup(func() {
		for _, proc := range hp.Procs() {
			logTail(t, proc)
		}
		if err := hp.Stop(); err != nil {
			t.Errorf("stopping the platform: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("starting the platform: %v", err)
	}
	return &Platform{Platform: hp, t: t, LogDir: logDir}
}

// RestartRedis stops Redis (losing everything it held) and starts it again.
func (p *Platform) RestartRedis(t testing.TB) {
	t.Helper()
	if err := p.Platform.RestartRedis(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// StartWorker starts one more CPU worker and waits until it serves. It runs
// until the platform stops.
func (p *Platform) StartWorker(t testing.TB, id string, leaseTTL time.Duration) *Worker {
	t.Helper()
	w, err := p.Platform.StartWorker(context.Background(), id, leaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// CLI runs the dionysia CLI against the platform and returns its output.
func (p *Platform) CLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.Platform.CLI(context.Background(), args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// APIRequest calls the management API with the platform's key and decodes a
// 2xx JSON answer into out (when non-nil). It returns the status code.
func (p *Platform) APIRequest(t testing.TB, method, path, body string, out any) int {
	t.Helper()
	code, err := p.Request(context.Background(), http.DefaultClient, method, path, body, out)
	if err != nil {
		t.Fatal(err)
	}
	return code
}
