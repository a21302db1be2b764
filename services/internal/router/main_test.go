package router_test

import (
	"bufio"
	"context"
	"fmt"
	"github.com/dionysia/dionysia/testkit"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/services/internal/router/routertest"
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
	if err := routertest.BuildOrigin(ctx, originBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mediaDir = filepath.Join(tmp, "media")
	if err := routertest.MakeMedia(ctx, mediaDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startOrigin runs the origin standalone as worker workerID over dataDir and
// returns its base URL and a function that kills it (also run at cleanup).
// With keysEnv (DIONYSIA_PLAYBACK_KEYS=...) the origin enforces playback
// tokens itself, as origins reachable by viewers (redirect mode) must.
func startOrigin(t *testing.T, dataDir, workerID, prefix string, keysEnv ...string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"-data", dataDir, "-worker-id", workerID, "-holds", "redis", "-redis-url", testkit.RedisURL(), "-prefix", prefix}
	if len(keysEnv) > 0 {
		args = append(args, "-enforce-tokens")
	}
	cmd := exec.CommandContext(ctx, originBin, args...)
	cmd.Env = append(os.Environ(), keysEnv...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		cancel()
	}
	t.Cleanup(stop)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatal("origin exited before listening")
		}
		url, found := strings.CutPrefix(line, "listening on ")
		if !found {
			t.Fatalf("unexpected origin output %q", line)
		}
		return url, stop
	case <-time.After(10 * time.Second):
		t.Fatal("origin did not start")
	}
	return "", stop
}
