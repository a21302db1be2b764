package worker

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: a
// handler, lease renewer, stop watcher or pipeline that does not stop with
// its context would show up here. GStreamer's own threads are C threads, not
// goroutines, so they need no exception.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
