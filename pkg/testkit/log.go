package testkit

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// LogBuffer keeps everything written to it, for assertions on a log (for
// example that a secret never reaches it). It is safe for concurrent writers.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWriter sends each write to t.Log when the test runs with -v, and
// drops it otherwise.
type TestWriter struct{ T testing.TB }

func (w TestWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.T.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Logger returns a debug-level text logger whose lines are kept in the
// returned buffer and, with go test -v, shown through t.Log. Without -v, a
// test that fails shows the last lines of it (up to 200) at its end, so that
// a failure seen once in CI explains itself.
func Logger(t testing.TB) (*slog.Logger, *LogBuffer) {
	logs := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() && !testing.Verbose() {
			lines := strings.Split(strings.TrimRight(logs.String(), "\n"), "\n")
			t.Logf("last %d log lines:\n%s", min(len(lines), 200), strings.Join(lines[max(len(lines)-200, 0):], "\n"))
		}
	})
	h := slog.NewTextHandler(io.MultiWriter(logs, TestWriter{T: t}), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), logs
}
