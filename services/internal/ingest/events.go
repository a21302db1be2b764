package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
)

// Recording the ingest lifecycle in the event log (docs/events.md).
//
// Every event is appended in the transaction of the change it records, so it
// exists if and only if the change was committed:
//
//   - a publisher goes live: session.started and stream.live (OpenSession's
//     transaction); a session it supersedes: session.ended;
//   - it drops (disconnected, timed out) and may resume within the reconnect
//     grace: stream.disconnected, with resume_until;
//   - it resumes within the grace: session.resumed and stream.live;
//   - the session is over for good: session.ended and, when the stream has
//     no other open session, stream.idle. That is when its worker's stop is
//     claimed (at its end, or when the grace passed), in the claim's
//     transaction. store.RecordSessionEnd makes it exactly once across
//     replicas and re-claims;
//   - a new session of a stream that records: recording.started, with its
//     asset (OpenSession's transaction); a resumed session keeps its asset;
//   - the session is over for good: its asset becomes processing, in the
//     transaction of session.ended (package api builds it and records
//     recording.ready or recording.failed);
//   - the worker reports: transcode.started, transcode.restarted,
//     transcode.failed, and stream.failover when a session's transcode starts
//     on another worker than the one that ran it.

// EventData renders resources as event data: their API JSON without secrets
// (api.EventData).
type EventData interface {
	Stream(st store.Stream, open *store.Session) apiv1.EventStream
	Session(sess store.Session) apiv1.EventSession
	Asset(a store.Asset) apiv1.Asset
}

// FinalizeDelay is how long after its session ended an asset is built
// without its worker's final report (docs/recording.md).
const FinalizeDelay = time.Minute

// Workers tells when a worker was last known alive: its last fleet
// heartbeat (fleet.Registry via LastSeenFunc). ok is false when the fleet no
// longer lists it.
type Workers interface {
	LastSeen(ctx context.Context, workerID string) (last time.Time, ok bool, err error)
}

// LastSeenFunc adapts a function to Workers.
type LastSeenFunc func(ctx context.Context, workerID string) (time.Time, bool, error)

// LastSeen calls f.
func (f LastSeenFunc) LastSeen(ctx context.Context, workerID string) (time.Time, bool, error) {
	return f(ctx, workerID)
}

func (s *Service) appendStream(ctx context.Context, tx *store.Store, typ string, streamID uuid.UUID, open *store.Session, resumeUntil *time.Time) error {
	st, err := tx.GetStream(ctx, streamID)
	if err != nil {
		return err
	}
	data := s.cfg.EventData.Stream(st, open)
	data.ResumeUntil = resumeUntil
	_, err = tx.AppendEvent(ctx, store.NewEvent{Type: typ, StreamID: &st.ID, Data: data})
	return err
}

func (s *Service) appendSession(ctx context.Context, tx *store.Store, typ string, sess store.Session, reason string) error {
	data := s.cfg.EventData.Session(sess)
	data.Reason = reason
	_, err := tx.AppendEvent(ctx, store.NewEvent{Type: typ, StreamID: &sess.StreamID, Data: data})
	return err
}

// recordOpened records what OpenSession did, in its transaction.
func (s *Service) recordOpened(ctx context.Context, tx *store.Store, o store.Opened) error {
	switch {
	case o.Resumed:
		if err := s.appendSession(ctx, tx, event.SessionResumed, o.Session, ""); err != nil {
			return err
		}
		return s.appendStream(ctx, tx, event.StreamLive, o.Session.StreamID, &o.Session, nil)
	case o.Created:
		for _, old := range o.Superseded {
			if err := s.recordEnd(ctx, tx, old); err != nil {
				return err
			}
		}
		if err := s.appendSession(ctx, tx, event.SessionStarted, o.Session, ""); err != nil {
			return err
		}
		if err := s.startRecording(ctx, tx, o.Session); err != nil {
			return err
		}
		return s.appendStream(ctx, tx, event.StreamLive, o.Session.StreamID, &o.Session, nil)
	}
	return nil
}

// startRecording creates the asset of a new session when its stream
// records, and records recording.started.
func (s *Service) startRecording(ctx context.Context, tx *store.Store, sess store.Session) error {
	st, err := tx.GetStream(ctx, sess.StreamID)
	if err != nil || !st.Records() {
		return err
	}
	a, err := tx.CreateSessionAsset(ctx, st.ID, sess.ID, st.DeleteAfterDays)
	if err != nil {
		return err
	}
	_, err = tx.AppendEvent(ctx, store.NewEvent{Type: event.RecordingStarted, StreamID: &st.ID, Data: s.cfg.EventData.Asset(a)})
	return err
}

// recordEnded records the end of a session EndSession just closed, in its
// transaction: stream.disconnected when the publisher may still resume it,
// else session.ended (and stream.idle).
func (s *Service) recordEnded(ctx context.Context, tx *store.Store, sess store.Session) error {
	if sess.WorkerStopAt != nil && sess.EndedAt != nil && sess.WorkerStopAt.After(*sess.EndedAt) {
		return s.appendStream(ctx, tx, event.StreamDisconnected, sess.StreamID, &sess, sess.WorkerStopAt)
	}
	return s.recordEnd(ctx, tx, sess)
}

// recordEnd records session.ended for a session that is over for good, and
// stream.idle when its stream has no other open session, unless another
// transaction recorded it already (then it records nothing).
func (s *Service) recordEnd(ctx context.Context, tx *store.Store, sess store.Session) error {
	ended, ok, err := tx.RecordSessionEnd(ctx, sess.ID)
	if err != nil || !ok {
		return err
	}
	if err := s.appendSession(ctx, tx, event.SessionEnded, ended, ""); err != nil {
		return err
	}
	if _, _, err := tx.EndSessionAsset(ctx, ended.ID, FinalizeDelay); err != nil {
		return err
	}
	_, err = tx.OpenSessionOf(ctx, ended.StreamID)
	if errors.Is(err, store.ErrNotFound) {
		return s.appendStream(ctx, tx, event.StreamIdle, ended.StreamID, nil, nil)
	}
	return err
}

// recordStarted records a worker's start of a session's transcode in one
// transaction with the session's new worker: transcode.started, and
// stream.failover when the session ran on another worker before. The gap is
// measured from that worker's last fleet heartbeat (lastSeen, looked up in
// Redis while the session's row is locked, so that it is the worker being
// replaced; nil when unknown) to now, when the API records the new start.
// A worker that restarts under the same id and takes its session back is
// not a failover: the session stays on "the same" worker.
func (s *Service) recordStarted(ctx context.Context, sessionID uuid.UUID, workerID string, lastSeen func(prev string) *time.Time) (store.Session, error) {
	var out store.Session
	err := s.st.InTx(ctx, func(tx *store.Store) error {
		prev, err := tx.LockSession(ctx, sessionID)
		if err != nil {
			return err
		}
		out, err = tx.SetSessionWorker(ctx, sessionID, workerID)
		if err != nil {
			return err
		}
		if err := s.appendSession(ctx, tx, event.TranscodeStarted, out, ""); err != nil {
			return err
		}
		if prev.WorkerID == nil || *prev.WorkerID == workerID {
			return nil
		}
		data := apiv1.EventFailover{StreamID: out.StreamID, SessionID: out.ID, FromWorker: *prev.WorkerID, ToWorker: workerID,
			Session: s.cfg.EventData.Session(out).Session}
		if seen := lastSeen(*prev.WorkerID); seen != nil {
			gap := time.Since(*seen).Milliseconds()
			data.GapMs, data.FromLastSeen = &gap, seen
		}
		_, err = tx.AppendEvent(ctx, store.NewEvent{Type: event.StreamFailover, StreamID: &out.StreamID, Data: data})
		return err
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("recording the start of session %s on worker %s: %w", sessionID, workerID, err)
	}
	return out, nil
}
