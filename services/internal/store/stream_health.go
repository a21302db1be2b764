package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
)

// SessionHealth is the latest health report a session's worker sent
// (docs/health.md). Report is nil until the first one.
type SessionHealth struct {
	Report    *job.HealthReport
	Status    string    // as evaluated when the report arrived ("" before the first)
	UpdatedAt time.Time // when it arrived
}

func sessionHealthFromRow(raw []byte, status *string, at *time.Time) SessionHealth {
	var h SessionHealth
	if len(raw) > 0 {
		var rep job.HealthReport
		if json.Unmarshal(raw, &rep) == nil {
			h.Report = &rep
		}
	}
	h.Status, h.UpdatedAt = deref(status), deref(at)
	return h
}

// HealthTarget is a session about to receive a health report, locked in
// the transaction LockSessionForHealth ran in.
type HealthTarget struct {
	SessionID       uuid.UUID
	StreamID        uuid.UUID
	Open            bool
	Status          string // the status recorded with the previous report ("" for none)
	SegmentDuration int    // the stream's, in seconds
}

// LockSessionForHealth returns a session and its stream's segment duration,
// locking the session's row until the transaction ends (use it in InTx).
// ErrNotFound for an unknown session.
func (s *Store) LockSessionForHealth(ctx context.Context, id uuid.UUID) (HealthTarget, error) {
	r, err := s.q.LockSessionForHealth(ctx, id)
	if err != nil {
		return HealthTarget{}, fmt.Errorf("loading session %s for its health: %w", id, interpretError(err))
	}
	return HealthTarget{SessionID: r.ID, StreamID: r.StreamID, Open: r.EndedAt == nil, Status: deref(r.HealthStatus),
		SegmentDuration: int(r.SegmentDuration)}, nil
}

// SetSessionHealth records an open session's latest health report, the
// status evaluated from it and when it arrived, and takes the source's
// frame rate, size and bitrate from the worker's measurement (zero values
// keep what the edge reported). A closed session is left as it is.
func (s *Store) SetSessionHealth(ctx context.Context, id uuid.UUID, rep job.HealthReport, status string, at time.Time) error {
	raw, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encoding the health of session %s: %w", id, err)
	}
	src := rep.Source
	err = s.q.SetSessionHealth(ctx, dbq.SetSessionHealthParams{
		ID: id, Health: raw, HealthStatus: &status, HealthUpdatedAt: &at,
		FrameRate: nonZero(src.FrameRate), Width: nonZero(int32(src.Width)), Height: nonZero(int32(src.Height)),
		BitrateKbps: nonZero(int32(src.BitrateKbps)),
	})
	if err != nil {
		return fmt.Errorf("recording the health of session %s: %w", id, interpretError(err))
	}
	return nil
}

// StreamHealthStatus is the recorded health status of a live stream.
type StreamHealthStatus struct {
	StreamID  uuid.UUID
	Status    string    // "" before the first report
	UpdatedAt time.Time // zero before the first report
}

// OpenSessionHealth lists the recorded health status of every open session.
func (s *Store) OpenSessionHealth(ctx context.Context) ([]StreamHealthStatus, error) {
	rows, err := s.q.ListOpenSessionHealth(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the health of open sessions: %w", interpretError(err))
	}
	out := make([]StreamHealthStatus, len(rows))
	for i, r := range rows {
		out[i] = StreamHealthStatus{StreamID: r.StreamID, Status: deref(r.HealthStatus), UpdatedAt: deref(r.HealthUpdatedAt)}
	}
	return out, nil
}
