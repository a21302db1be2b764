package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/google/uuid"
)

// ErrSessionOver means the API says the session is over (ended, failed or
// unknown): the worker ends it cleanly.
var ErrSessionOver = errors.New("session is over")

// errSourcePaused: the session's publisher dropped and may reconnect; the
// worker waits as for an ended source.
var errSourcePaused = errors.New("session's source is paused")

// Sources fetches where a session's stream is pulled from (job.SourcePath),
// authenticated with the worker secret. The answer holds the stream key and
// the read password: it is never logged or stored.
type Sources struct {
	APIURL string // e.g. http://127.0.0.1:8080
	Secret string // DIONYSIA_WORKER_SECRET; never logged
	Client *http.Client
}

// Fetch returns the session's source. It retries transient failures
// (network, 5xx) for up to about 5 s; a session that is over gives
// ErrSessionOver, one whose publisher may still come back errSourcePaused.
func (s *Sources) Fetch(ctx context.Context, sessionID uuid.UUID) (job.Source, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		src, err := s.get(ctx, sessionID)
		var tr transientError
		if err == nil || !errors.As(err, &tr) || ctx.Err() != nil {
			return src, err
		}
		select {
		case <-ctx.Done():
			return job.Source{}, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *Sources) get(ctx context.Context, sessionID uuid.UUID) (job.Source, error) {
	status, header, body, err := apiCall(ctx, s.Client, s.APIURL, s.Secret, http.MethodGet, job.SourcePath(sessionID), nil)
	if err != nil {
		return job.Source{}, transientError{fmt.Errorf("fetching the source of session %s: %w", sessionID, err)}
	}
	statusText := fmt.Sprintf("%d %s", status, http.StatusText(status))
	switch {
	case status == http.StatusOK:
		var src job.Source
		if err := json.Unmarshal(body, &src); err != nil || src.URL == "" {
			return job.Source{}, fmt.Errorf("fetching the source of session %s: malformed answer", sessionID)
		}
		return src, nil
	case status == http.StatusNotFound || status == http.StatusConflict:
		return job.Source{}, fmt.Errorf("%w: %s: %s", ErrSessionOver, statusText, problemDetail(body))
	case status == http.StatusServiceUnavailable && header.Get("Retry-After") != "":
		return job.Source{}, fmt.Errorf("%w: %s", errSourcePaused, problemDetail(body))
	case status >= 500:
		return job.Source{}, transientError{fmt.Errorf("fetching the source of session %s: %s: %s", sessionID, statusText, problemDetail(body))}
	default:
		// A wrong worker secret and the like: retrying cannot help.
		return job.Source{}, fmt.Errorf("fetching the source of session %s: %s: %s", sessionID, statusText, problemDetail(body))
	}
}

// problemDetail is the detail of a problem document (never the whole body).
func problemDetail(body []byte) string {
	var p struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return p.Detail
	}
	return string(bytes.TrimSpace(body[:min(len(body), 200)]))
}

type transientError struct{ error }

func (e transientError) Unwrap() error { return e.error }

// runOnce is one pipeline run with a freshly fetched source, so that a run
// after a failover, a pipeline restart or a publisher's return pulls from
// where the session is now. It returns the source it ran. A paused source
// counts as an ended one (nil error, no source): the run loop waits for it
// within the source grace.
func (h *Handler) runOnce(ctx context.Context, t job.Transcode, sink media.Sink) (job.Source, error) {
	src, err := h.Source(ctx, t.SessionID)
	if errors.Is(err, errSourcePaused) {
		return job.Source{}, nil
	}
	if err != nil {
		return job.Source{}, err
	}
	return src, h.Run(ctx, t, src, sink)
}
