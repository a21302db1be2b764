// Package testlog captures the log output of code under test: every line is
// kept for assertions (for example that a secret never reaches a log) and,
// with go test -v, also shown through t.Log.
package testlog

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer safe for concurrent writers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Writer sends each write to t.Log when the test runs with -v.
type Writer struct{ T testing.TB }

func (w Writer) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.T.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
