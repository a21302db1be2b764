package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/workers/internal/pipeline"
)

// healthInterval is how often a running pipeline's health is posted: on a
// timer, not on media, so a stalled source is still reported.
const healthInterval = 2 * time.Second

// idleReport: when the source's media stops (or resumes) for this long, the
// health is posted at once rather than at the next interval, so the API
// sees a stall within about this long plus a check period.
const (
	idleReport = 2 * time.Second
	idleCheck  = 250 * time.Millisecond
)

// HealthReporter posts the health of running pipelines to the control
// plane's internal endpoint (job.HealthPath), authenticated with the worker
// secret. A report that fails is not retried: the next one follows in 2 s.
type HealthReporter struct {
	APIURL   string
	Secret   string // never logged
	WorkerID string
	Client   *http.Client
	Logger   *slog.Logger
	// Interval between reports; 0: 2 s.
	Interval time.Duration
}

// Run posts health() every Interval until ctx ends, and at once when the
// source's media stops or resumes (idle for idleReport). A nil reporter
// does nothing.
func (r *HealthReporter) Run(ctx context.Context, t job.Transcode, health func() pipeline.Health) {
	if r == nil {
		return
	}
	every := r.Interval
	if every <= 0 {
		every = healthInterval
	}
	tick := time.NewTicker(min(every, idleCheck))
	defer tick.Stop()
	failing, wasIdle := false, false
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h := health()
		idle := !h.LastMediaAt.IsZero() && h.At.Sub(h.LastMediaAt) >= idleReport
		if time.Since(last) < every && idle == wasIdle {
			continue
		}
		last, wasIdle = time.Now(), idle
		err := r.post(ctx, healthReport(t, r.WorkerID, h))
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			r.Logger.Warn("reporting stream health (further failures are logged at debug level)", "session_id", t.SessionID, "err", err)
			failing = true
		case err != nil:
			r.Logger.Debug("reporting stream health", "session_id", t.SessionID, "err", err)
		case failing:
			r.Logger.Info("reporting stream health works again", "session_id", t.SessionID)
			failing = false
		}
	}
}

func (r *HealthReporter) post(ctx context.Context, rep job.HealthReport) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encoding health report: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, _, msg, err := apiCall(ctx, r.Client, r.APIURL, r.Secret, http.MethodPost, job.HealthPath(rep.SessionID), body)
	if err != nil {
		return fmt.Errorf("posting health report: %w", err)
	}
	if status/100 != 2 {
		return fmt.Errorf("posting health report: %d %s: %s", status, http.StatusText(status), problemDetail(msg))
	}
	return nil
}

// healthReport converts a pipeline's measurements to the wire format.
func healthReport(t job.Transcode, workerID string, h pipeline.Health) job.HealthReport {
	idle := -1.0
	if !h.LastMediaAt.IsZero() {
		idle = max(0, h.At.Sub(h.LastMediaAt).Seconds())
	}
	var resumed float64
	if !h.ResumedAt.IsZero() {
		resumed = max(0.001, h.At.Sub(h.ResumedAt).Seconds())
	}
	var running float64
	if !h.Started.IsZero() {
		running = h.At.Sub(h.Started).Seconds()
	}
	s := h.Source
	return job.HealthReport{
		StreamID: t.StreamID, SessionID: t.SessionID, WorkerID: workerID, Time: h.At.UTC(),
		RunningS: running, VideoSeen: h.VideoSeen, FirstVideoAfterS: h.FirstVideoAfter.Seconds(),
		SourceIdleS: idle, SourceResumedS: resumed,
		Source: job.HealthSource{
			FrameRate: s.FrameRate, FrameRateJitter: s.FrameRateJitter,
			KeyframeIntervalS: s.KeyframeInterval.Seconds(), KeyframeIntervalAtLeast: s.KeyframeIntervalAtLeast,
			BitrateKbps: s.BitrateKbps, BitrateMeanKbps: s.BitrateMeanKbps, BFrames: s.BFrames, Audio: s.Audio,
			Width: s.Width, Height: s.Height,
		},
		Output: job.HealthOutput{
			RealtimeFactor: h.Output.RealtimeFactor, DroppedFrames: h.Output.DroppedFrames, SegmentsLate: h.Output.SegmentsLate,
		},
	}
}
