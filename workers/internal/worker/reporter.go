package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/google/uuid"
)

// Reporter posts session events to the control plane's internal endpoint
// (job.SessionEventPath), authenticated with the worker secret. Failures are
// retried a few times and then logged: a lost event never stops a stream.
type Reporter struct {
	APIURL string // e.g. http://127.0.0.1:8080
	Secret string // DIONYSIA_WORKER_SECRET; never logged
	Client *http.Client
	Logger *slog.Logger
}

// Report sends ev, retrying transient failures for up to about 5 s.
func (r *Reporter) Report(ctx context.Context, ev job.SessionEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.ID == uuid.Nil {
		ev.ID = uuid.New() // the same in every retry: the API records it once
	}
	body, err := json.Marshal(ev)
	if err != nil {
		r.Logger.Error("encoding session event", "err", err)
		return
	}
	// Events outlive the job's context (a "finished" event is sent while the
	// job is being cancelled), but not the process.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = r.post(ctx, ev, body)
		if err == nil {
			return
		}
		var perm permanentError
		if ctx.Err() != nil || attempt == 5 || errors.As(err, &perm) {
			r.Logger.Warn("reporting session event", "session_id", ev.SessionID, "type", ev.Type, "attempts", attempt, "err", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (r *Reporter) post(ctx context.Context, ev job.SessionEvent, body []byte) error {
	status, _, msg, err := apiCall(ctx, r.Client, r.APIURL, r.Secret, http.MethodPost, job.SessionEventPath(ev.SessionID), body)
	if err != nil {
		return fmt.Errorf("posting session event: %w", err)
	}
	if status/100 != 2 {
		err := fmt.Errorf("posting session event: %d %s: %s", status, http.StatusText(status), problemDetail(msg))
		if status/100 == 4 {
			// A wrong secret or an unknown session: retrying cannot help.
			return permanentError{err}
		}
		return err
	}
	return nil
}

// permanentError is a refusal that a retry would only repeat.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }
