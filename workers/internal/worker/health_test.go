package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/workers/internal/pipeline"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestHealthReporter: reports are posted on a timer, with the worker
// secret, to the session's health path, however stale the media is.
func TestHealthReporter(t *testing.T) {
	tr := job.Transcode{StreamID: uuid.New(), SessionID: uuid.New()}
	var mu sync.Mutex
	var got []job.HealthReport
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.URL.Path != job.HealthPath(tr.SessionID) || r.Method != http.MethodPost {
			http.Error(w, "wrong call", http.StatusBadRequest)
			return
		}
		var rep job.HealthReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, rep)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	started := time.Now().Add(-10 * time.Second)
	lastMedia := time.Now().Add(-4 * time.Second) // the source stalled 4 s ago
	health := func() pipeline.Health {
		return pipeline.Health{At: time.Now(), Started: started, VideoSeen: true, LastMediaAt: lastMedia,
			Source: pipeline.SourceHealth{FrameRate: 30, KeyframeInterval: 8 * time.Second, Audio: pipeline.AudioAbsent, Width: 640, Height: 360},
			Output: pipeline.OutputHealth{RealtimeFactor: 0.8, SegmentsLate: 2}}
	}
	r := &HealthReporter{APIURL: srv.URL, Secret: "s3cret", WorkerID: "w1", Logger: slog.New(slog.DiscardHandler), Interval: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx, tr, health) }()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 3 }, 30*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	rep := got[0]
	mu.Unlock()
	require.Equal(t, tr.StreamID, rep.StreamID)
	require.Equal(t, "w1", rep.WorkerID)
	require.InDelta(t, 4, rep.SourceIdleS, 1)
	require.InDelta(t, 10, rep.RunningS, 1)
	require.True(t, rep.VideoSeen)
	require.Equal(t, job.HealthSource{FrameRate: 30, KeyframeIntervalS: 8, Audio: job.AudioAbsent, Width: 640, Height: 360}, rep.Source)
	require.Equal(t, job.HealthOutput{RealtimeFactor: 0.8, SegmentsLate: 2}, rep.Output)

	// A long interval: the stall is still posted at once, and nothing more
	// while it lasts.
	mu.Lock()
	got = nil
	mu.Unlock()
	r.Interval = time.Hour
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { defer close(done); r.Run(ctx, tr, health) }()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(3 * idleCheck)
	cancel()
	<-done
	mu.Lock()
	require.Len(t, got, 1)
	mu.Unlock()

	// Before any media: the idle time is -1.
	require.Equal(t, -1.0, healthReport(tr, "w1", pipeline.Health{At: time.Now()}).SourceIdleS)
}
