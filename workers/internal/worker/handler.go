package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/origin"
	"github.com/dionysia/dionysia/workers/internal/packager"
	"github.com/dionysia/dionysia/workers/internal/pipeline"
	"github.com/dionysia/dionysia/workers/internal/recording"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// RunFunc runs one pipeline run of a transcode, pulling src, into sink. It returns nil when
// the source ended (EOS), an error when the run failed, and ctx.Err() (or nil)
// soon after ctx ends. Permanent failures (a source that can never be
// transcoded) are marked by wrapping ErrPermanent.
type RunFunc func(ctx context.Context, t job.Transcode, src job.Source, sink media.Sink) error

// SourceFunc returns where a session's stream is pulled from now
// (Sources.Fetch); ErrSessionOver when the session is over.
type SourceFunc func(ctx context.Context, sessionID uuid.UUID) (job.Source, error)

// ErrPermanent marks a pipeline failure that a restart cannot fix, such as an
// unsupported codec or a source with no video.
var ErrPermanent = errors.New("permanent pipeline failure")

// errStopRequested is the cancel cause when the control plane asked the
// session to stop.
type errStopRequested struct{ reason string }

func (e errStopRequested) Error() string { return "stop requested: " + e.reason }

// Handler runs transcode tasks: it takes ownership of the stream, runs the
// pipeline into the packager, restarts it on failure with bounded backoff, and
// stops when the session ends, the lease is lost or the worker shuts down.
type Handler struct {
	WorkerID  string
	OriginURL string
	DataDir   string

	Ownership *ownership.Store
	Stops     job.StopSignal
	Reporter  *Reporter
	Source    SourceFunc // asked before every pipeline run
	Run       RunFunc
	Metrics   *Metrics
	Logger    *slog.Logger

	// Store is the object store recordings are uploaded to: a task with
	// Recording set gets a recording.Uploader fed by the packager. Nil: such
	// sessions run without recording (logged).
	Store storage.Store
	// RecordingFinishTimeout bounds, when a recorded session ends, the
	// upload of what is still queued before the final report. Default 60 s.
	RecordingFinishTimeout time.Duration
	// DVRRestoreTimeout bounds how long a worker that takes over a recording
	// stream with a DVR window holds its live playlists back while it
	// fetches the window's older segments from the store (0:
	// DefaultDVRRestoreTimeout).
	DVRRestoreTimeout time.Duration

	// Retention is how long a stream's files stay on disk after its session
	// ended on this worker (players finishing the last segments, late CDN
	// fetches). Default 60 s.
	Retention time.Duration
	// MaxRestarts bounds pipeline restarts within RestartWindow before the
	// session is failed. Defaults 5 and 1 min.
	MaxRestarts   int
	RestartWindow time.Duration
	// EndLinger is how long a worker keeps serving a stream after its
	// session ended, so players fetch the final playlists (EXT-X-ENDLIST, a
	// static MPD) before routers stop sending them here. It ends early when
	// a new session of the stream is assigned. Default 2 segments + 1 s.
	EndLinger time.Duration
	// SourceGrace is how long an ended source may come back (a publisher
	// reconnecting) before the session is finished, when no stop request
	// arrives first. It should exceed the API's reconnect grace, which
	// decides. Default 12 s. It applies to live pulls only: a file source
	// (tests, benchmarks) ends the session at its end.
	SourceGrace time.Duration
	// OnThumbnail, when set, is called after each live thumbnail of a
	// stream was written (to {DataDir}/{stream_id}/thumbnail.jpg), from the
	// pipeline's thumbnail thread: it must return quickly.
	OnThumbnail func(streamID uuid.UUID, th media.Thumbnail)
	// Changes is told whenever a stream's playlists change, so the origin
	// answers LL-HLS blocking requests at once (nil: nobody is told).
	Changes *origin.Broadcast

	mu       sync.Mutex
	active   map[uuid.UUID]*ownership.Hold // streams this worker holds now
	removals map[uuid.UUID]*time.Timer     // pending retention removals

	recorders map[uuid.UUID]*recording.Uploader // (under mu) the uploaders of streams recorded here
}

// SpoolDirName is the directory of DataDir where recorded files wait for
// their upload, one subdirectory per session. It starts with a dot, so it
// can never be taken for a stream's directory.
const SpoolDirName = ".recording"

// Holds reports whether this worker currently owns the stream; the origin
// serves only such streams.
func (h *Handler) Holds(streamID string) bool {
	id, err := uuid.Parse(streamID)
	if err != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	hold, ok := h.active[id]
	return ok && hold.Err() == nil
}

// Load is the number of streams this worker runs now.
func (h *Handler) Load() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.active)
}

func (h *Handler) track(streamID uuid.UUID, hold *ownership.Hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.active == nil {
		h.active = map[uuid.UUID]*ownership.Hold{}
		h.removals = map[uuid.UUID]*time.Timer{}
		h.recorders = map[uuid.UUID]*recording.Uploader{}
	}
	h.active[streamID] = hold
	if t, ok := h.removals[streamID]; ok {
		t.Stop() // live again before its old files expired: keep the directory
		delete(h.removals, streamID)
	}
}

func (h *Handler) untrack(streamID uuid.UUID, dir string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.active, streamID)
	retention := h.Retention
	if retention <= 0 {
		retention = time.Minute
	}
	h.removals[streamID] = time.AfterFunc(retention, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, live := h.active[streamID]; live {
			return
		}
		delete(h.removals, streamID)
		if err := packager.RemoveAfter(context.Background(), dir, 0); err != nil {
			h.Logger.Warn("removing expired stream files", "stream_id", streamID, "err", err)
		}
	})
}

// ProcessTask implements asynq.Handler for job.TypeTranscode.
func (h *Handler) ProcessTask(ctx context.Context, task *asynq.Task) error {
	t, err := job.Unmarshal(task.Payload())
	if err != nil {
		// A payload that cannot be run never will be: do not retry.
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := h.Logger.With("stream_id", t.StreamID, "session_id", t.SessionID)

	if reason, stopped, err := h.Stops.Requested(ctx, t.SessionID); err != nil {
		return fmt.Errorf("checking session stop: %w", err)
	} else if stopped {
		log.Info("session already ended before it started here", "reason", reason)
		return nil
	}

	// The task holds no credential: ask the API where to pull from. A
	// session that is already over is not started.
	if _, err := h.Source(ctx, t.SessionID); errors.Is(err, ErrSessionOver) {
		log.Info("session is over before it started here", "err", err)
		return nil
	}

	hold, err := h.Ownership.Hold(ctx, t.StreamID.String(), t.SessionID.String(), ownership.Holder{
		WorkerID: h.WorkerID, OriginURL: h.OriginURL,
	})
	if held := (*ownership.HeldError)(nil); errors.As(err, &held) {
		// Another worker produces this stream (a redelivered task after a
		// failover, or a duplicate): fencing says we must not start.
		log.Info("stream is owned by another worker, not starting", "owner", held.WorkerID)
		return nil
	} else if err != nil {
		return fmt.Errorf("taking ownership of stream %s: %w", t.StreamID, err)
	}
	dir := h.streamDir(t.StreamID)
	h.track(t.StreamID, hold)
	defer h.untrack(t.StreamID, dir)
	defer func() {
		if err := hold.Release(context.WithoutCancel(ctx)); err != nil {
			log.Warn("releasing stream ownership", "err", err)
		}
	}()
	log.Info("transcoding", "token", hold.Lease().Token, "profile", t.ProfileName)

	runCtx, cancel := context.WithCancelCause(hold.Context())
	defer cancel(nil)
	go func() {
		select {
		case reason, ok := <-h.Stops.Watch(runCtx, t.SessionID):
			if ok {
				cancel(errStopRequested{reason})
			}
		case <-runCtx.Done():
		}
	}()

	rec := h.startRecording(log, t, hold)
	defer h.stopRecording(t.StreamID, rec)

	pk, err := packager.New(packager.Config{
		Dir:             dir,
		OnFile:          rec.onFile(),
		SegmentDuration: time.Duration(t.SegmentDuration * float64(time.Second)),
		WindowSize:      windowSize(t),
		DisableHLS:      !contains(t.Outputs, job.OutputHLS),
		DisableDASH:     !contains(t.Outputs, job.OutputDASH),
		Logger:          log,
	})
	if err != nil {
		return fmt.Errorf("creating packager: %w", err)
	}
	// The live thumbnail of an earlier session of the stream here is not
	// this session's: none until the pipeline decodes a frame.
	if err := os.Remove(filepath.Join(dir, pipeline.ThumbnailFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("removing an earlier session's thumbnail", "err", err)
	}
	h.resumeWindow(runCtx, log, t, pk, dir)
	h.report(ctx, t, job.EventStarted, "")

	outcome := h.runLoop(runCtx, log, t, pk)

	cause := context.Cause(runCtx)
	var stop errStopRequested
	switch {
	case errors.As(cause, &stop), outcome.ended:
		// The session is over: close the playlists for good.
		if err := pk.Close(true); err != nil {
			log.Warn("closing outputs", "err", err)
		}
		h.finishRecording(ctx, log, rec)
		reason := outcome.reason
		if errors.As(cause, &stop) {
			reason = stop.reason
		}
		h.report(ctx, t, job.EventFinished, reason)
		log.Info("session finished", "reason", reason)
		h.linger(hold, t)
		return nil
	case errors.Is(cause, ownership.ErrLost):
		// Someone else owns the stream now; write nothing more, say nothing
		// (the new owner continues the recording).
		log.Warn("ownership lost, stopping without output")
		rec.abort()
		_ = pk.Close(false)
		return nil
	case outcome.failed != nil:
		_ = pk.Close(true)
		h.finishRecording(ctx, log, rec) // what was recorded is kept
		h.report(ctx, t, job.EventFailed, outcome.failed.Error())
		log.Error("session failed", "err", outcome.failed)
		return fmt.Errorf("%w: %w", outcome.failed, asynq.SkipRetry)
	default:
		// Worker shutdown: leave the playlists open and release the lease (by
		// the deferred Release), so the control plane's watchdog hands the
		// stream to another worker at once. asynq schedules a retry of this
		// task; when it runs, the session is either owned by another worker
		// (fenced out) or over. The next owner continues the recording.
		rec.abort()
		_ = pk.Close(false)
		log.Info("worker stopping, handing the stream over")
		return fmt.Errorf("worker shutting down: %w", ctx.Err())
	}
}

// linger keeps the ownership (and so the routing entry) of an ended stream for
// EndLinger, unless a newer session of the stream is assigned meanwhile.
func (h *Handler) linger(hold *ownership.Hold, t job.Transcode) {
	d := h.EndLinger
	if d <= 0 {
		d = time.Duration((2*t.SegmentDuration + 1) * float64(time.Second))
	}
	ctx := hold.Context()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
			st, err := h.Ownership.State(ctx, t.StreamID.String())
			if err == nil && st.Assignment != nil && st.Assignment.SessionID != t.SessionID.String() {
				return // a new session wants the stream: hand it over now
			}
		}
	}
}

type runOutcome struct {
	ended  bool   // the source ended for good
	reason string // why it ended
	failed error  // the session failed and will not be retried
}

// runLoop runs the pipeline until the session ends, fails or ctx ends.
func (h *Handler) runLoop(ctx context.Context, log *slog.Logger, t job.Transcode, pk *packager.Packager) runOutcome {
	maxRestarts := h.MaxRestarts
	if maxRestarts <= 0 {
		maxRestarts = 5
	}
	window := h.RestartWindow
	if window <= 0 {
		window = time.Minute
	}
	grace := h.SourceGrace
	if grace <= 0 {
		grace = 12 * time.Second
	}
	var restarts []time.Time
	backoff := 500 * time.Millisecond
	var sourceGoneSince time.Time // zero while the source is presumed present
	for {
		started := time.Now()
		src, err := h.runOnce(ctx, t, pk)
		if ctx.Err() != nil {
			return runOutcome{}
		}
		if errors.Is(err, ErrSessionOver) {
			return runOutcome{ended: true, reason: "session_over"}
		}
		if errors.Is(err, ErrPermanent) && finite(src) {
			// A file that cannot be transcoded never will be. A live source
			// can: what a pull sees depends on when it joins and on what the
			// publisher sends now (a read that caught no video yet, an
			// encoder reconfigured on reconnect), so there a "permanent"
			// failure spends the restart budget like any other.
			return runOutcome{failed: err}
		}
		if time.Since(started) > grace {
			sourceGoneSince = time.Time{} // it ran fine for a while
			backoff = 500 * time.Millisecond
		}
		if err == nil && finite(src) {
			// A file has an end: reading it again would only replay it.
			return runOutcome{ended: true, reason: "source_ended"}
		}
		if err == nil && sourceGoneSince.IsZero() {
			sourceGoneSince = time.Now()
		}
		if !sourceGoneSince.IsZero() {
			// The source ended. The publisher may come back within the grace
			// window (the next run then continues the session after a
			// discontinuity); usually the control plane's stop comes first.
			// Failures to connect meanwhile are expected, not restarts.
			if time.Since(sourceGoneSince) > grace {
				return runOutcome{ended: true, reason: "source_ended"}
			}
			log.Info("source ended, waiting for it to come back", "grace", grace, "err", err)
			select {
			case <-ctx.Done():
				return runOutcome{}
			case <-time.After(time.Second):
			}
			continue
		}
		now := time.Now()
		restarts = append(restarts, now)
		for len(restarts) > 0 && now.Sub(restarts[0]) > window {
			restarts = restarts[1:]
		}
		if len(restarts) > maxRestarts {
			return runOutcome{failed: fmt.Errorf("pipeline failed %d times within %s, last: %w", len(restarts), window, err)}
		}
		log.Warn("pipeline failed, restarting", "err", err, "backoff", backoff)
		h.Metrics.restart(t.StreamID.String())
		h.report(ctx, t, job.EventRestarted, err.Error())
		select {
		case <-ctx.Done():
			return runOutcome{}
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 8*time.Second)
	}
}

func (h *Handler) report(ctx context.Context, t job.Transcode, typ, reason string) {
	if h.Reporter == nil {
		return
	}
	h.Reporter.Report(ctx, job.SessionEvent{
		StreamID: t.StreamID, SessionID: t.SessionID, WorkerID: h.WorkerID, Type: typ, Reason: reason,
	})
}

// finite reports whether a source has an end of its own (a file), as opposed
// to a live pull whose publisher may come back after it dropped.
func finite(src job.Source) bool {
	u, err := url.Parse(src.URL)
	return err == nil && u.Scheme == "file"
}

// windowSize is how many segments the live playlists list: the DVR window
// (t.DVRWindowS, rounded up to whole segments) when it is longer than the
// playlist window.
func windowSize(t job.Transcode) int {
	n := t.PlaylistWindowSize
	if t.DVRWindowS > 0 && t.SegmentDuration > 0 {
		n = max(n, int(math.Ceil(float64(t.DVRWindowS)/t.SegmentDuration)))
	}
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
