package health

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
)

// Recorder stores the health reports of the workers on their sessions.
type Recorder struct {
	Store  *store.Store
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
}

// Changed is the data of a stream.health_changed event.
type Changed struct {
	StreamID  uuid.UUID          `json:"stream_id"`
	SessionID uuid.UUID          `json:"session_id"`
	Previous  string             `json:"previous"` // the status before ("unknown" for the first report)
	Status    string             `json:"status"`
	Health    apiv1.StreamHealth `json:"health"`
}

// Record stores rep as the latest health of its session and, when the
// status it evaluates to differs from the one recorded with the previous
// report, records a stream.health_changed event in the same transaction.
// A report for a closed session is ignored (its worker is stopping);
// store.ErrNotFound for an unknown session.
func (r *Recorder) Record(ctx context.Context, sessionID uuid.UUID, rep job.HealthReport) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	at := now()
	var changed *Changed
	err := r.Store.InTx(ctx, func(tx *store.Store) error {
		target, err := tx.LockSessionForHealth(ctx, sessionID)
		if err != nil {
			return err
		}
		if !target.Open {
			return nil
		}
		h := Evaluate(Input{Report: &rep, ReceivedAt: at, Now: at, Live: true, SegmentDurationS: target.SegmentDuration})
		if err := tx.SetSessionHealth(ctx, sessionID, rep, h.Status, at); err != nil {
			return err
		}
		prev := target.Status
		if prev == "" {
			prev = apiv1.HealthUnknown
		}
		if prev == h.Status {
			return nil
		}
		changed = &Changed{StreamID: target.StreamID, SessionID: sessionID, Previous: prev, Status: h.Status, Health: h}
		if _, err := tx.AppendEvent(ctx, store.NewEvent{Type: event.StreamHealthChanged, StreamID: &target.StreamID, Data: changed}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording the health of session %s: %w", sessionID, err)
	}
	if changed != nil && r.Logger != nil {
		r.Logger.Info("stream health changed", "stream_id", changed.StreamID, "session_id", sessionID,
			"previous", changed.Previous, "status", changed.Status, "warnings", codes(changed.Health.Warnings))
	}
	return nil
}

func codes(ws []apiv1.HealthWarning) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Code
	}
	return out
}
