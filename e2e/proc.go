// Package e2e runs the whole platform as real processes (PostgreSQL and Redis
// from the local set-up, the edge with its mediamtx, the API, the router and
// workers) and drives it with real publishers (ffmpeg) and real players
// (ffprobe, hls.js and dash.js in headless Chromium). The processes are
// started by the test kit's harness (testkit/harness), which the benchmarks
// run too; this package adapts it to package testing.
package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/testkit/harness"
)

// Proc is a child process started by a test (harness.Proc).
type Proc = harness.Proc

// StartProc starts bin with args and extra environment; its output goes to
// logDir/name.log. It is stopped at test cleanup (SIGTERM, then SIGKILL of
// its process group after 5 s) and, when the test failed, its log's tail is
// printed.
func StartProc(t testing.TB, logDir, name string, env []string, bin string, args ...string) *Proc {
	t.Helper()
	p, err := harness.StartProc(logDir, name, env, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		logTail(t, p)
	})
	return p
}

// logTail prints the end of a process's log when the test failed.
func logTail(t testing.TB, p *Proc) {
	if t.Failed() {
		t.Logf("---- last lines of %s ----\n%s", p.LogPath, harness.Tail(p.LogPath, 40))
	}
}

// Run runs a command to completion with a timeout and returns its combined
// output; it fails the test on error.
func Run(t testing.TB, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	out, err := harness.Run(context.Background(), timeout, env, name, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// Eventually polls cond every interval until it returns true or timeout.
// It returns how long it took.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
