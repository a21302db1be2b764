package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/packager"
	"github.com/dionysia/dionysia/workers/internal/recording"
	"github.com/google/uuid"
)

// recorder is a task's recording.Uploader; nil when the session does not
// record. Its methods accept nil.
type recorder struct {
	*recording.Uploader
}

func (r *recorder) onFile() func(packager.File) {
	if r == nil {
		return nil
	}
	return r.File
}

func (r *recorder) abort() {
	if r != nil {
		r.Abort()
	}
}

// startRecording creates the uploader of a task that records (t.Recording).
func (h *Handler) startRecording(log *slog.Logger, t job.Transcode, hold *ownership.Hold) *recorder {
	if t.Recording == nil {
		return nil
	}
	log = log.With("asset_id", t.Recording.AssetID)
	if h.Store == nil || h.Reporter == nil {
		log.Error("the session records, but this worker has no recording store or API: not recording")
		return nil
	}
	up, err := recording.New(recording.Config{
		Store: h.Store, AssetID: t.Recording.AssetID, StreamID: t.StreamID, SessionID: t.SessionID,
		WorkerID: h.WorkerID, Lease: hold.Lease(),
		Held:     func() bool { return hold.Err() == nil },
		Report:   h.Reporter.Recording,
		SpoolDir: filepath.Join(h.DataDir, SpoolDirName, t.SessionID.String()),
		Logger:   log,
		Metrics:  h.Metrics.recordingMetrics(),
	})
	if err != nil {
		log.Error("not recording", "err", err)
		return nil
	}
	h.mu.Lock()
	h.recorders[t.StreamID] = up
	h.mu.Unlock()
	log.Info("recording", "store", h.Store.String())
	return &recorder{up}
}

// finishRecording uploads what is still queued and sends the final report,
// for at most RecordingFinishTimeout (the job's cancellation does not cut
// it short: the session is over and what it recorded is worth keeping).
func (h *Handler) finishRecording(ctx context.Context, log *slog.Logger, r *recorder) {
	if r == nil {
		return
	}
	d := h.RecordingFinishTimeout
	if d <= 0 {
		d = time.Minute
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	start := time.Now()
	if err := r.Finish(fctx); err != nil {
		log.Error("finishing the recording", "err", err, "stats", fmt.Sprintf("%+v", r.Stats()))
		return
	}
	st := r.Stats()
	log.Info("recording finished", "uploaded", st.UploadedFiles, "bytes", st.UploadedBytes, "lost", st.LostSegments,
		"took", time.Since(start).Round(time.Millisecond))
}

// stopRecording ends the task's uploader (Abort is a no-op after Finish) and
// forgets it.
func (h *Handler) stopRecording(streamID uuid.UUID, r *recorder) {
	if r == nil {
		return
	}
	r.Abort()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recorders[streamID] == r.Uploader {
		delete(h.recorders, streamID)
	}
}

// thumbnail hands a thumbnail of a stream to its recording, if the stream
// records on this worker (the thumbnailer's hook).
func (h *Handler) thumbnail(streamID uuid.UUID, th media.Thumbnail) {
	h.mu.Lock()
	up := h.recorders[streamID]
	h.mu.Unlock()
	if up != nil {
		up.Thumbnail(th)
	}
}

// Recording posts a recording report (job.RecordingPath) once: it returns
// the API's status, and with a status other than 2xx its problem detail as
// err; a network failure is err with status 0. The uploader retries.
func (r *Reporter) Recording(ctx context.Context, rep job.RecordingReport) (int, error) {
	body, err := json.Marshal(rep)
	if err != nil {
		return 0, fmt.Errorf("encoding recording report: %w", err)
	}
	status, _, msg, err := apiCall(ctx, r.Client, r.APIURL, r.Secret, http.MethodPost, job.RecordingPath(rep.SessionID), body)
	if err != nil {
		return 0, fmt.Errorf("posting recording report: %w", err)
	}
	if status/100 != 2 {
		return status, fmt.Errorf("%d %s: %s", status, http.StatusText(status), problemDetail(msg))
	}
	return status, nil
}
