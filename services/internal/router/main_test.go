package router_test

import (
	"context"
	"fmt"
	"github.com/dionysia/dionysia/pkg/testkit"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

// Built once per test binary by TestMain.
var (
	originBin string // the worker's origin, served by workers/internal/origin/standalone
	mediaDir  string // a real HLS (fMP4) + DASH tree made by ffmpeg
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "router-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	originBin = filepath.Join(tmp, "origin")
	if err := harness.BuildOrigin(ctx, originBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mediaDir = filepath.Join(tmp, "media")
	if _, err := harness.MakeMedia(ctx, mediaDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startOrigin runs the origin standalone as worker workerID over dataDir and
// returns its base URL and a function that kills it (also run at cleanup).
// Like a worker's origin it has the playback keys (keysEnv) and enforces each
// stream's live policy itself.
func startOrigin(t *testing.T, dataDir, workerID, prefix string) (string, func()) {
	t.Helper()
	args := []string{"-data", dataDir, "-worker-id", workerID, "-holds", "redis", "-redis-url", testkit.RedisURL(), "-prefix", prefix}
	o, err := harness.StartOrigin(context.Background(), originBin, []string{keysEnv}, os.Stderr, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Stop)
	return o.URL, o.Stop
}
