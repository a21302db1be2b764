package ingest

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
)

// Telling a session's worker to stop.
//
// A session ends when its publisher leaves, but its worker is told to stop
// only when the session's worker_stop_at has come: at once for most ends, and
// after the reconnect grace when the publisher dropped (it may come back and
// continue the session; package store resumes it only while its worker has not
// been told). The due time lives in the session's row in PostgreSQL, not in
// Redis, so a stop survives Redis losing its data and an API restart. Every
// API replica runs Run; store.ClaimDueWorkerStops gives each due stop to one
// of them. Stopping is StopSignal.Request (the worker) plus Dispatcher.End (the
// stream's assignment): only this package sends stops.

// DefaultStopInterval is how often Run looks for due worker stops.
const DefaultStopInterval = 250 * time.Millisecond

// stopBatch bounds the stops one pass of Run carries out.
const stopBatch = 100

// resumable reports whether a session ended this way may be continued by its
// publisher within the reconnect grace.
func resumable(reason string) bool {
	return reason == edgeapi.EndPublisherDisconnected || reason == edgeapi.EndPublisherTimeout
}

// stopAfter is how long after a session's end its worker is told to stop.
func (s *Service) stopAfter(reason string) time.Duration {
	if resumable(reason) {
		return s.cfg.ReconnectGrace
	}
	return 0
}

// Claiming a stop records session.ended (recordEnd) in the claim's
// transaction: the session is over for good.

// Run carries out due worker stops until ctx ends, every StopInterval. It
// returns ctx's error.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.StopInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			s.stopDue(ctx)
		}
	}
}

// stopDue is one pass of Run.
func (s *Service) stopDue(ctx context.Context) {
	var due []store.Session
	err := s.st.InTx(ctx, func(tx *store.Store) error {
		var err error
		if due, err = tx.ClaimDueWorkerStops(ctx, stopBatch); err != nil {
			return err
		}
		for _, sess := range due {
			if err := s.recordEnd(ctx, tx, sess); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "looking for due worker stops", "err", err)
		}
		return
	}
	for _, sess := range due {
		if err := s.tellWorker(ctx, sess); err != nil {
			s.log.WarnContext(ctx, "stopping a session's worker; retrying", "session_id", sess.ID, "err", err)
			continue
		}
		if sess.WorkerStopAt != nil && sess.EndedAt != nil && sess.WorkerStopAt.After(*sess.EndedAt) {
			s.log.InfoContext(ctx, "publisher did not come back within the grace: worker stopped",
				"stream_id", sess.StreamID, "session_id", sess.ID, "reason", cmp.Or(deref(sess.EndReason), "ended"))
		}
	}
}

// stopNow tells the worker of an ended session to stop, if that is due and
// not done yet (by this or another replica). A failure is returned and the
// stop is left for Run to retry.
func (s *Service) stopNow(ctx context.Context, sessionID uuid.UUID) error {
	var (
		sess store.Session
		ok   bool
	)
	err := s.st.InTx(ctx, func(tx *store.Store) error {
		var err error
		sess, ok, err = tx.ClaimWorkerStop(ctx, sessionID)
		if err != nil || !ok {
			return err
		}
		return s.recordEnd(ctx, tx, sess)
	})
	if err != nil || !ok {
		return err
	}
	return s.tellWorker(ctx, sess)
}

// tellWorker carries out a claimed stop: the worker is told to stop and the
// stream's assignment is dropped. On failure the claim is given back.
func (s *Service) tellWorker(ctx context.Context, sess store.Session) error {
	reason := cmp.Or(deref(sess.EndReason), "ended")
	err := errors.Join(s.stops.Request(ctx, sess.ID, reason), s.disp.End(ctx, sess.StreamID, sess.ID))
	if err == nil {
		s.m.workerStops.Inc()
		return nil
	}
	if uerr := s.st.UnclaimWorkerStop(context.WithoutCancel(ctx), sess.ID); uerr != nil {
		err = errors.Join(err, uerr)
	}
	return err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
