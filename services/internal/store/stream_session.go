package store

import (
	"context"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
)

// Session statuses.
const (
	SessionStarting = "starting" // the publisher connected; no worker runs it yet
	SessionLive     = "live"     // a worker is transcoding it
	SessionEnded    = "ended"    // the publisher stopped
	SessionFailed   = "failed"   // it ended because something broke
)

// Session is one live session of a stream: from a publisher connecting to the
// edge until it leaves (or the session fails).
type Session struct {
	ID        uuid.UUID
	StreamID  uuid.UUID
	Status    string
	EdgeID    string
	WorkerID  *string
	StartedAt time.Time
	EndedAt   *time.Time
	EndReason *string
	// Source information as probed by the edge; nil until known.
	SourceProtocol    *string
	SourceVideoCodec  *string
	SourceWidth       *int
	SourceHeight      *int
	SourceFrameRate   *float64 // frames per second
	SourceBitrateKbps *int
	UpdatedAt         time.Time
}

// NewSession is what CreateSession needs.
type NewSession struct {
	StreamID       uuid.UUID
	EdgeID         string
	SourceProtocol string // "rtmp", "srt", "rtsp", "webrtc"; empty when unknown
}

func intPtr(p *int32) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

func sessionFromRow(r dbq.StreamSession) Session {
	return Session{ID: r.ID, StreamID: r.StreamID, Status: r.Status, EdgeID: r.EdgeID, WorkerID: r.WorkerID,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, EndReason: r.EndReason, SourceProtocol: r.SourceProtocol,
		SourceVideoCodec: r.SourceVideoCodec, SourceWidth: intPtr(r.SourceWidth), SourceHeight: intPtr(r.SourceHeight),
		SourceFrameRate: r.SourceFrameRate, SourceBitrateKbps: intPtr(r.SourceBitrateKbps), UpdatedAt: r.UpdatedAt}
}

// CreateSession starts a session in status SessionStarting.
func (s *Store) CreateSession(ctx context.Context, n NewSession) (Session, error) {
	var proto *string
	if n.SourceProtocol != "" {
		proto = &n.SourceProtocol
	}
	row, err := s.q.CreateStreamSession(ctx, dbq.CreateStreamSessionParams{ID: newID(), StreamID: n.StreamID, EdgeID: n.EdgeID, SourceProtocol: proto})
	if err != nil {
		return Session{}, fmt.Errorf("creating session of stream %s: %w", n.StreamID, interpretError(err))
	}
	return sessionFromRow(row), nil
}

// GetSession returns the session with id.
func (s *Store) GetSession(ctx context.Context, id uuid.UUID) (Session, error) {
	row, err := s.q.GetStreamSession(ctx, id)
	if err != nil {
		return Session{}, fmt.Errorf("loading session %s: %w", id, interpretError(err))
	}
	return sessionFromRow(row), nil
}

// ListSessions returns a stream's sessions, newest first. page.After is the
// last (oldest) id of the previous page.
func (s *Store) ListSessions(ctx context.Context, streamID uuid.UUID, page Page) ([]Session, *uuid.UUID, error) {
	rows, err := s.q.ListStreamSessions(ctx, dbq.ListStreamSessionsParams{StreamID: streamID, Before: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing sessions of stream %s: %w", streamID, interpretError(err))
	}
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = sessionFromRow(r)
	}
	items, next := paginate(out, page.Limit, func(s Session) uuid.UUID { return s.ID })
	return items, next, nil
}

// EndSession ends an open session with status SessionEnded or SessionFailed.
// An already ended session gives ErrNotFound.
func (s *Store) EndSession(ctx context.Context, id uuid.UUID, status, reason string) (Session, error) {
	var r *string
	if reason != "" {
		r = &reason
	}
	row, err := s.q.EndStreamSession(ctx, dbq.EndStreamSessionParams{ID: id, Status: status, EndReason: r})
	if err != nil {
		return Session{}, fmt.Errorf("ending session %s: %w", id, interpretError(err))
	}
	return sessionFromRow(row), nil
}
