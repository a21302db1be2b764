package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Session statuses.
const (
	SessionLive   = "live"   // open: the publisher is on the edge
	SessionEnded  = "ended"  // closed: the publisher left (EndReason says how)
	SessionFailed = "failed" // the transcode gave up (LastError says why); open or closed
)

// EndSuperseded is the end reason of an open session closed because the same
// stream went live again elsewhere (a newer publisher connection).
const EndSuperseded = "superseded"

// Session is one live session of a stream: from a publisher going live on an
// edge until it leaves.
type Session struct {
	ID       uuid.UUID
	StreamID uuid.UUID
	Status   string // SessionLive, SessionEnded or SessionFailed
	EdgeID   string
	SourceID string           // the edge's connection id of the publisher; "" for sessions not opened by an edge
	Edge     edgeapi.EdgeInfo // how to reach the edge (pull URL, kick URL)
	WorkerID *string          // the worker that last started the transcode
	// Source is what the publisher sends, as the edge reports it.
	Source     Source
	StartedAt  time.Time
	EndedAt    *time.Time
	EndReason  *string
	EndDetail  *string
	LastError  *string
	KickReason *string    // a disconnect was requested
	LastSeenAt *time.Time // last time the edge listed the publisher
	// WorkerStopAt is when the session's worker is to be told to stop: its
	// end, or its end plus the reconnect grace. WorkerStoppedAt is when it
	// was (nil: not yet).
	WorkerStopAt    *time.Time
	WorkerStoppedAt *time.Time
	// EndRecordedAt is when session.ended was recorded (RecordSessionEnd):
	// the session is over for good and is never resumed.
	EndRecordedAt *time.Time
	UpdatedAt     time.Time
}

// Open reports whether the session has not ended.
func (s Session) Open() bool { return s.EndedAt == nil }

// Source describes a publisher's stream; nil fields are unknown.
type Source struct {
	Protocol        *string // rtmp, srt, rtsp, webrtc
	VideoCodec      *string // H264, H265, ...
	VideoProfile    *string
	Width           *int
	Height          *int
	FrameRate       *float64 // frames per second
	BitrateKbps     *int     // ingest bitrate
	AudioCodec      *string
	AudioChannels   *int
	AudioSampleRate *int // Hz
}

// SourceFromMedia converts what the edge reports; zero values are unknown.
func SourceFromMedia(protocol string, m edgeapi.Media) Source {
	return Source{
		Protocol: nonZero(protocol), VideoCodec: nonZero(m.VideoCodec), VideoProfile: nonZero(m.VideoProfile),
		Width: nonZero(m.Width), Height: nonZero(m.Height), FrameRate: nonZero(m.FPS), BitrateKbps: nonZero(m.BitrateKbps),
		AudioCodec: nonZero(m.AudioCodec), AudioChannels: nonZero(m.AudioChannels), AudioSampleRate: nonZero(m.AudioRate),
	}
}

func nonZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func intPtr(p *int32) *int {
	if p == nil {
		return nil
	}
	v := int(*p)
	return &v
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func sessionFromRow(r dbq.StreamSession) Session {
	return Session{ID: r.ID, StreamID: r.StreamID, Status: r.Status, EdgeID: r.EdgeID, SourceID: deref(r.SourceID),
		Edge: r.Edge, WorkerID: r.WorkerID,
		Source: Source{Protocol: r.SourceProtocol, VideoCodec: r.SourceVideoCodec, VideoProfile: r.SourceVideoProfile,
			Width: intPtr(r.SourceWidth), Height: intPtr(r.SourceHeight), FrameRate: r.SourceFrameRate,
			BitrateKbps: intPtr(r.SourceBitrateKbps), AudioCodec: r.SourceAudioCodec,
			AudioChannels: intPtr(r.SourceAudioChannels), AudioSampleRate: intPtr(r.SourceAudioSampleRate)},
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, EndReason: r.EndReason, EndDetail: r.EndDetail,
		LastError: r.LastError, KickReason: r.KickReason, LastSeenAt: r.LastSeenAt,
		WorkerStopAt: r.WorkerStopAt, WorkerStoppedAt: r.WorkerStoppedAt, EndRecordedAt: r.EndRecordedAt, UpdatedAt: r.UpdatedAt}
}

func sessionsFromRows(rows []dbq.StreamSession) []Session {
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = sessionFromRow(r)
	}
	return out
}

// NewSession is what OpenSession needs.
type NewSession struct {
	StreamID  uuid.UUID
	EdgeID    string
	SourceID  string // required: with EdgeID, the session's idempotency key
	Edge      edgeapi.EdgeInfo
	Source    Source
	StartedAt time.Time // zero: now
	// ResumeWithin, when positive, reopens the stream's latest session
	// instead of creating one if its publisher dropped (disconnected or timed
	// out) less than ResumeWithin ago and nothing else started since.
	ResumeWithin time.Duration
}

// Opened is the outcome of OpenSession.
type Opened struct {
	Session Session
	// Created is false when the session of (EdgeID, SourceID) already
	// existed: nothing was changed and Session is that session.
	Created bool
	// Superseded are the stream's other open sessions, which OpenSession
	// ended with EndSuperseded.
	Superseded []Session
	// Resumed is true when a dropped session was reopened (NewSession.ResumeWithin).
	Resumed bool
}

// OpenSession opens a live session for a publisher and marks its stream live,
// in one transaction. It is idempotent on (EdgeID, SourceID). A stream has at
// most one open session: any other open session of the stream is ended first
// (a publisher that reconnected before its old connection was reported gone).
// An unknown stream gives ErrNotFound.
func (s *Store) OpenSession(ctx context.Context, n NewSession) (Opened, error) {
	if n.SourceID == "" || n.EdgeID == "" {
		return Opened{}, fmt.Errorf("opening session of stream %s: %w: edge and source ids are required", n.StreamID, ErrInvalid)
	}
	started := n.StartedAt
	if started.IsZero() {
		started = time.Now()
	}
	var out Opened
	err := s.tx(ctx, func(q *dbq.Queries) error {
		// The stream's row lock serialises everything that opens or ends its sessions.
		if _, err := q.LockStream(ctx, n.StreamID); err != nil {
			return interpretError(err)
		}
		existing, err := q.GetStreamSessionBySource(ctx, dbq.GetStreamSessionBySourceParams{EdgeID: n.EdgeID, SourceID: &n.SourceID})
		if err == nil {
			out = Opened{Session: sessionFromRow(existing)}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return interpretError(err)
		}
		if n.ResumeWithin > 0 {
			after := time.Now().Add(-n.ResumeWithin)
			row, err := q.ResumeStreamSession(ctx, dbq.ResumeStreamSessionParams{
				EdgeID: n.EdgeID, SourceID: &n.SourceID, Edge: n.Edge, StreamID: n.StreamID, EndedAfter: &after,
			})
			switch {
			case err == nil:
				if err := q.RefreshStreamStatus(ctx, n.StreamID); err != nil {
					return interpretError(err)
				}
				out = Opened{Session: sessionFromRow(row), Resumed: true}
				return nil
			case !errors.Is(err, pgx.ErrNoRows):
				return interpretError(err)
			}
		}
		reason := EndSuperseded
		ended, err := q.EndOpenStreamSessions(ctx, dbq.EndOpenStreamSessionsParams{StreamID: n.StreamID, EndReason: &reason})
		if err != nil {
			return interpretError(err)
		}
		src := n.Source
		row, err := q.InsertStreamSession(ctx, dbq.InsertStreamSessionParams{
			ID: newID(), StreamID: n.StreamID, EdgeID: n.EdgeID, SourceID: &n.SourceID, Edge: n.Edge,
			SourceProtocol: src.Protocol, SourceVideoCodec: src.VideoCodec, SourceVideoProfile: src.VideoProfile,
			SourceWidth: int32Ptr(src.Width), SourceHeight: int32Ptr(src.Height), SourceFrameRate: src.FrameRate,
			SourceBitrateKbps: int32Ptr(src.BitrateKbps), SourceAudioCodec: src.AudioCodec,
			SourceAudioChannels: int32Ptr(src.AudioChannels), SourceAudioSampleRate: int32Ptr(src.AudioSampleRate),
			StartedAt: started,
		})
		if err != nil {
			return interpretError(err)
		}
		if err := q.RefreshStreamStatus(ctx, n.StreamID); err != nil {
			return interpretError(err)
		}
		out = Opened{Session: sessionFromRow(row), Created: true, Superseded: sessionsFromRows(ended)}
		return nil
	})
	if err != nil {
		return Opened{}, fmt.Errorf("opening session of stream %s: %w", n.StreamID, err)
	}
	return out, nil
}

// EndSession ends an open session with a reason (an edgeapi.End* word) and
// an optional detail, and marks its stream idle when no other session of it
// is open. Its worker is due to be told to stop stopAfter from now (the
// reconnect grace of a publisher that dropped; zero: at once; see
// ClaimWorkerStop). It returns the session and whether this call ended it
// (false: it had already ended). An unknown session gives ErrNotFound.
func (s *Store) EndSession(ctx context.Context, id uuid.UUID, reason, detail string, stopAfter time.Duration) (Session, bool, error) {
	var (
		out   Session
		ended bool
	)
	err := s.tx(ctx, func(q *dbq.Queries) error {
		cur, err := q.GetStreamSession(ctx, id)
		if err != nil {
			return interpretError(err)
		}
		out, ended, err = endSession(ctx, q, cur, reason, detail, stopAfter)
		return err
	})
	if err != nil {
		return Session{}, false, fmt.Errorf("ending session %s: %w", id, err)
	}
	return out, ended, nil
}

// EndSessionBySource is EndSession for the session of a publisher connection
// on an edge.
func (s *Store) EndSessionBySource(ctx context.Context, edgeID, sourceID, reason, detail string, stopAfter time.Duration) (Session, bool, error) {
	var (
		out   Session
		ended bool
	)
	err := s.tx(ctx, func(q *dbq.Queries) error {
		cur, err := q.GetStreamSessionBySource(ctx, dbq.GetStreamSessionBySourceParams{EdgeID: edgeID, SourceID: &sourceID})
		if err != nil {
			return interpretError(err)
		}
		out, ended, err = endSession(ctx, q, cur, reason, detail, stopAfter)
		return err
	})
	if err != nil {
		return Session{}, false, fmt.Errorf("ending session of edge %s source %s: %w", edgeID, sourceID, err)
	}
	return out, ended, nil
}

func endSession(ctx context.Context, q *dbq.Queries, cur dbq.StreamSession, reason, detail string, stopAfter time.Duration) (Session, bool, error) {
	if cur.EndedAt != nil {
		return sessionFromRow(cur), false, nil
	}
	if _, err := q.LockStream(ctx, cur.StreamID); err != nil {
		return Session{}, false, interpretError(err)
	}
	row, err := q.EndStreamSession(ctx, dbq.EndStreamSessionParams{ID: cur.ID, EndReason: &reason, EndDetail: nonZero(detail),
		StopAfterMs: max(stopAfter, 0).Milliseconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		// Ended concurrently, while we waited for the stream's lock.
		row, err = q.GetStreamSession(ctx, cur.ID)
		if err != nil {
			return Session{}, false, interpretError(err)
		}
		return sessionFromRow(row), false, nil
	}
	if err != nil {
		return Session{}, false, interpretError(err)
	}
	if err := q.RefreshStreamStatus(ctx, cur.StreamID); err != nil {
		return Session{}, false, interpretError(err)
	}
	return sessionFromRow(row), true, nil
}

// ClaimDueWorkerStops claims up to max ended sessions whose worker is due to
// be told to stop, oldest first. Each due stop is claimed by one caller, even
// across API replicas; the caller tells the worker, or gives the claim back
// with UnclaimWorkerStop.
func (s *Store) ClaimDueWorkerStops(ctx context.Context, max int) ([]Session, error) {
	rows, err := s.q.ClaimDueWorkerStops(ctx, int32(max))
	if err != nil {
		return nil, fmt.Errorf("claiming due worker stops: %w", interpretError(err))
	}
	return sessionsFromRows(rows), nil
}

// ClaimWorkerStop claims the stop of one session's worker; ok is false when
// it is not due or was claimed already.
func (s *Store) ClaimWorkerStop(ctx context.Context, id uuid.UUID) (Session, bool, error) {
	row, err := s.q.ClaimWorkerStop(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("claiming the worker stop of session %s: %w", id, interpretError(err))
	}
	return sessionFromRow(row), true, nil
}

// UnclaimWorkerStop gives a claimed stop back, so that it is claimed again.
func (s *Store) UnclaimWorkerStop(ctx context.Context, id uuid.UUID) error {
	if err := s.q.UnclaimWorkerStop(ctx, id); err != nil {
		return fmt.Errorf("unclaiming the worker stop of session %s: %w", id, interpretError(err))
	}
	return nil
}

// RecordSessionEnd marks that session.ended is recorded for an ended
// session, so that it is recorded exactly once: ok is true only for the one
// call (across API replicas, and however often its worker stop is claimed
// and given back) that marked it; the caller appends the event in the same
// transaction (InTx). A marked session is never resumed. An open session
// gives ok false.
func (s *Store) RecordSessionEnd(ctx context.Context, id uuid.UUID) (Session, bool, error) {
	row, err := s.q.RecordStreamSessionEnd(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("recording the end of session %s: %w", id, interpretError(err))
	}
	return sessionFromRow(row), true, nil
}

// LockSession returns the session with id and locks its row until the end
// of the transaction (call it on the Store of an InTx).
func (s *Store) LockSession(ctx context.Context, id uuid.UUID) (Session, error) {
	row, err := s.q.LockStreamSession(ctx, id)
	if err != nil {
		return Session{}, fmt.Errorf("locking session %s: %w", id, interpretError(err))
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

// OpenSessionOf returns the open session of a stream, or ErrNotFound.
func (s *Store) OpenSessionOf(ctx context.Context, streamID uuid.UUID) (Session, error) {
	row, err := s.q.GetOpenStreamSession(ctx, streamID)
	if err != nil {
		return Session{}, fmt.Errorf("loading the open session of stream %s: %w", streamID, interpretError(err))
	}
	return sessionFromRow(row), nil
}

// OpenSessionsOf returns the open sessions of the given streams, by stream id.
func (s *Store) OpenSessionsOf(ctx context.Context, streamIDs []uuid.UUID) (map[uuid.UUID]Session, error) {
	out := map[uuid.UUID]Session{}
	if len(streamIDs) == 0 {
		return out, nil
	}
	rows, err := s.q.ListOpenStreamSessionsOf(ctx, streamIDs)
	if err != nil {
		return nil, fmt.Errorf("loading open sessions: %w", interpretError(err))
	}
	for _, r := range rows {
		out[r.StreamID] = sessionFromRow(r)
	}
	return out, nil
}

// OpenSessions returns every open session, oldest first.
func (s *Store) OpenSessions(ctx context.Context) ([]Session, error) {
	rows, err := s.q.ListOpenStreamSessions(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing open sessions: %w", interpretError(err))
	}
	return sessionsFromRows(rows), nil
}

// OpenSessionPolicy is an open session with its stream's current playback
// policy.
type OpenSessionPolicy struct {
	SessionID      uuid.UUID
	StreamID       uuid.UUID
	Status         string
	PlaybackPolicy string
}

// OpenSessionPolicies returns every open session with its stream's playback
// policy, oldest first.
func (s *Store) OpenSessionPolicies(ctx context.Context) ([]OpenSessionPolicy, error) {
	rows, err := s.q.ListOpenStreamSessionPolicies(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing open sessions: %w", interpretError(err))
	}
	out := make([]OpenSessionPolicy, len(rows))
	for i, r := range rows {
		out[i] = OpenSessionPolicy{SessionID: r.ID, StreamID: r.StreamID, Status: r.Status, PlaybackPolicy: r.PlaybackPolicy}
	}
	return out, nil
}

// EdgeSession is an open session of an edge with the state of its stream.
type EdgeSession struct {
	Session
	StreamKey      string // the stream's current key; never log it
	StreamDisabled bool
}

// OpenEdgeSessions returns the open sessions of an edge.
func (s *Store) OpenEdgeSessions(ctx context.Context, edgeID string) ([]EdgeSession, error) {
	rows, err := s.q.ListOpenEdgeSessions(ctx, edgeID)
	if err != nil {
		return nil, fmt.Errorf("listing open sessions of edge %s: %w", edgeID, interpretError(err))
	}
	out := make([]EdgeSession, len(rows))
	for i, r := range rows {
		out[i] = EdgeSession{Session: sessionFromRow(r.StreamSession), StreamKey: r.StreamKey, StreamDisabled: r.Disabled}
	}
	return out, nil
}

// ListSessions returns a stream's sessions, newest first. page.After is the
// last (oldest) id of the previous page.
func (s *Store) ListSessions(ctx context.Context, streamID uuid.UUID, page Page) ([]Session, *uuid.UUID, error) {
	rows, err := s.q.ListStreamSessions(ctx, dbq.ListStreamSessionsParams{StreamID: streamID, Before: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing sessions of stream %s: %w", streamID, interpretError(err))
	}
	items, next := paginate(sessionsFromRows(rows), page.Limit, func(s Session) uuid.UUID { return s.ID })
	return items, next, nil
}

// UpdateSessionSource records what a sync reports about an open session's
// publisher at seenAt; unknown (nil) fields keep their value.
func (s *Store) UpdateSessionSource(ctx context.Context, id uuid.UUID, src Source, seenAt time.Time) error {
	err := s.q.UpdateStreamSessionSource(ctx, dbq.UpdateStreamSessionSourceParams{
		ID: id, SeenAt: &seenAt, BitrateKbps: int32Ptr(src.BitrateKbps), VideoCodec: src.VideoCodec,
		VideoProfile: src.VideoProfile, Width: int32Ptr(src.Width), Height: int32Ptr(src.Height), FrameRate: src.FrameRate,
		AudioCodec: src.AudioCodec, AudioChannels: int32Ptr(src.AudioChannels), AudioSampleRate: int32Ptr(src.AudioSampleRate),
	})
	if err != nil {
		return fmt.Errorf("updating source of session %s: %w", id, interpretError(err))
	}
	return nil
}

// RequestKick records that the publisher of an open session must be
// disconnected. A closed or unknown session gives ErrNotFound.
func (s *Store) RequestKick(ctx context.Context, id uuid.UUID, reason string) (Session, error) {
	row, err := s.q.SetStreamSessionKick(ctx, dbq.SetStreamSessionKickParams{ID: id, KickReason: &reason})
	if err != nil {
		return Session{}, fmt.Errorf("requesting a kick of session %s: %w", id, interpretError(err))
	}
	return sessionFromRow(row), nil
}

// SetSessionWorker records the worker that started the session's transcode;
// an open failed session becomes live again.
func (s *Store) SetSessionWorker(ctx context.Context, id uuid.UUID, workerID string) (Session, error) {
	row, err := s.q.SetStreamSessionWorker(ctx, dbq.SetStreamSessionWorkerParams{ID: id, WorkerID: &workerID})
	if err != nil {
		return Session{}, fmt.Errorf("setting the worker of session %s: %w", id, interpretError(err))
	}
	return sessionFromRow(row), nil
}

// SetSessionError records a transcode failure; with failed the session's
// status becomes SessionFailed.
func (s *Store) SetSessionError(ctx context.Context, id uuid.UUID, workerID, msg string, failed bool) (Session, error) {
	row, err := s.q.SetStreamSessionError(ctx, dbq.SetStreamSessionErrorParams{ID: id, WorkerID: nonZero(workerID), LastError: &msg, Failed: failed})
	if err != nil {
		return Session{}, fmt.Errorf("recording an error of session %s: %w", id, interpretError(err))
	}
	return sessionFromRow(row), nil
}

// PublishAuth is what a publish decision needs about a stream key.
type PublishAuth struct {
	StreamID uuid.UUID
	Disabled bool
	// The stream's open session, if any: its id, edge and the last time the
	// edge reported it (its start when never synced).
	SessionID     *uuid.UUID
	SessionEdgeID string
	SessionSeenAt time.Time
}

// PublishAuthByKey looks a stream key up with the stream's open session in
// one indexed query. An unknown key gives ErrNotFound; the error never
// contains the key.
func (s *Store) PublishAuthByKey(ctx context.Context, key string) (PublishAuth, error) {
	row, err := s.q.GetPublishAuth(ctx, key)
	if err != nil {
		return PublishAuth{}, fmt.Errorf("looking a stream key up: %w", interpretError(err))
	}
	out := PublishAuth{StreamID: row.ID, Disabled: row.Disabled, SessionID: row.SessionID, SessionEdgeID: deref(row.SessionEdgeID)}
	if row.SessionSeenAt != nil {
		out.SessionSeenAt = *row.SessionSeenAt
	} else if row.SessionStartedAt != nil {
		out.SessionSeenAt = *row.SessionStartedAt
	}
	return out, nil
}

// CountLiveStreams returns how many streams are live.
func (s *Store) CountLiveStreams(ctx context.Context) (int, error) {
	n, err := s.q.CountLiveStreams(ctx)
	if err != nil {
		return 0, fmt.Errorf("counting live streams: %w", interpretError(err))
	}
	return int(n), nil
}
