// Package ingest is the API side of the ingest lifecycle: it decides who may
// publish to and read from the edges, opens a stream_session when the edge
// reports a publisher live and hands it to the workers (package dispatch),
// closes it when the publisher leaves and tells the worker to stop
// (job.StopSignal), reconciles the sessions with each edge's full live set,
// and disconnects publishers (disconnect requests, disabled streams, rotated
// keys). docs/edge.md describes the contract with the edge (package edgeapi).
//
// Worker read credentials: a worker pulls a live stream from the edge with
// user "worker" and a password the API mints, base64url(HMAC-SHA256(edge
// secret, "read\x00" + stream_id + "\x00" + session_id)). The worker fetches
// it with the pull URL (which holds the stream key) from the API each time a
// pipeline run starts (Service.Source); neither is ever in a task or in
// Redis. It is valid only while that session is the stream's open session: a
// republish, or the end of the session, revokes it.
package ingest

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/dispatch"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/secret"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// WorkerUser is the user name of every worker read credential.
const WorkerUser = "worker"

// Refusal reasons of the API (AuthResponse.Reason), and kick reasons.
const (
	ReasonInvalidKey         = "invalid_key" // no stream has this key (unknown, or rotated away)
	ReasonDisabled           = "disabled"    // the stream is disabled
	ReasonAlreadyLive        = edgeapi.ReasonAlreadyLive
	ReasonInvalidCredentials = "invalid_credentials" // a read without a valid worker credential
	ReasonNotLive            = "not_live"            // a read of a stream that has no open session

	KickDisconnect    = "disconnect"      // POST /api/v1/streams/{id}/disconnect
	KickDisabled      = "stream_disabled" // the stream was disabled while live
	KickKeyRotated    = "key_rotated"     // the stream key was rotated while live
	KickStreamDeleted = "stream_deleted"  // the stream was deleted while live
	KickSessionEnded  = "session_ended"   // the publisher's session was closed by the API
	KickUnknownStream = "unknown_stream"  // the key belongs to no stream any more
)

// EndEdgeLost is the end reason of a session its edge stopped listing without
// sending a not_ready event (the event was lost, or the edge restarted).
const EndEdgeLost = "edge_lost"

// Errors.
var (
	// ErrNotLive: the stream has no open session.
	ErrNotLive = errors.New("stream is not live")
	// ErrInvalidEvent: an event the service does not understand.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrSessionOver: the session ended (or failed) and will not resume: its
	// worker must end it.
	ErrSessionOver = errors.New("session is over")
	// ErrSessionPaused: the session's publisher dropped within the reconnect
	// grace and may come back: its worker waits.
	ErrSessionPaused = errors.New("session's publisher dropped and may reconnect")
)

// Defaults of Config.
const (
	DefaultStaleAfter  = 15 * time.Second
	DefaultKickTimeout = 2 * time.Second
)

// Config configures a Service.
type Config struct {
	// EdgeSecret is the edge↔API secret: it authenticates kicks sent to the
	// edges and keys the worker read credentials. Required.
	EdgeSecret string
	// StaleAfter is how long an open session on another edge blocks a new
	// publisher of the same key (already_live) after that edge last reported
	// it; default DefaultStaleAfter (three of the edge's default sync intervals).
	StaleAfter time.Duration
	// KickTimeout bounds an immediate kick call to an edge; default DefaultKickTimeout.
	KickTimeout time.Duration
	// ReconnectGrace is how long a publisher that dropped may come back and
	// continue its session; its worker is stopped when it passes. Zero stops
	// the worker at once.
	ReconnectGrace time.Duration
	// StopInterval is how often Run looks for due worker stops; default
	// DefaultStopInterval.
	StopInterval time.Duration
	// EventData renders the streams and sessions of the events the service
	// records (events.go). Required.
	EventData EventData
	// Workers tells when a worker was last alive: where a stream.failover's
	// gap starts. Required.
	Workers    Workers
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Service runs the ingest lifecycle. It is safe for concurrent use.
type Service struct {
	cfg        Config
	st         *store.Store
	disp       *dispatch.Dispatcher
	stops      job.StopSignal
	transcodes Transcodes
	kicker     *edgeapi.Client
	log        *slog.Logger
	m          *metrics
}

// New returns a Service.
func New(st *store.Store, disp *dispatch.Dispatcher, stops job.StopSignal, cfg Config) (*Service, error) {
	if cfg.EdgeSecret == "" {
		return nil, errors.New("ingest: the edge secret is required")
	}
	if cfg.EventData == nil || cfg.Workers == nil {
		return nil, errors.New("ingest: EventData and Workers are required")
	}
	cfg.StaleAfter = cmp.Or(cfg.StaleAfter, DefaultStaleAfter)
	cfg.KickTimeout = cmp.Or(cfg.KickTimeout, DefaultKickTimeout)
	cfg.StopInterval = cmp.Or(cfg.StopInterval, DefaultStopInterval)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer, st)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg: cfg, st: st, disp: disp, stops: stops, transcodes: Transcodes{Store: st, EdgeSecret: cfg.EdgeSecret},
		kicker: &edgeapi.Client{Secret: cfg.EdgeSecret}, log: log, m: m,
	}, nil
}

// WorkerPassword is the read password of a worker for a session.
func WorkerPassword(edgeSecret string, streamID, sessionID uuid.UUID) string {
	mac := hmac.New(sha256.New, []byte(edgeSecret))
	mac.Write([]byte("read\x00" + streamID.String() + "\x00" + sessionID.String()))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Authorize decides whether a publisher may publish or a worker may read.
// An error means no decision could be made (the database is unreachable).
func (s *Service) Authorize(ctx context.Context, req edgeapi.AuthRequest) (edgeapi.AuthResponse, error) {
	switch req.Action {
	case edgeapi.ActionPublish:
		res, err := s.authorizePublish(ctx, req)
		if err != nil {
			return res, err
		}
		s.m.publishes.WithLabelValues(result(res), res.Reason).Inc()
		if !res.Allow {
			s.log.WarnContext(ctx, "publish refused", "reason", res.Reason, "auth", req)
		}
		return res, nil
	case edgeapi.ActionRead:
		res, err := s.authorizeRead(ctx, req)
		if err != nil {
			return res, err
		}
		s.m.reads.WithLabelValues(result(res), res.Reason).Inc()
		if !res.Allow {
			s.log.WarnContext(ctx, "read refused", "reason", res.Reason, "auth", req)
		}
		return res, nil
	}
	s.log.WarnContext(ctx, "edge auth refused", "reason", edgeapi.ReasonActionNotAllowed, "auth", req)
	return edgeapi.AuthResponse{Reason: edgeapi.ReasonActionNotAllowed}, nil
}

func result(res edgeapi.AuthResponse) string {
	if res.Allow {
		return "accepted"
	}
	return "refused"
}

func keyOf(req edgeapi.AuthRequest) (string, bool) {
	key, ok := edgeapi.StreamKey(req.Path)
	if !ok || (req.StreamKey != "" && req.StreamKey != key) || !secret.ValidStreamKey(key) {
		return "", false
	}
	return key, true
}

func (s *Service) authorizePublish(ctx context.Context, req edgeapi.AuthRequest) (edgeapi.AuthResponse, error) {
	key, ok := keyOf(req)
	if !ok {
		return edgeapi.AuthResponse{Reason: ReasonInvalidKey}, nil
	}
	pa, err := s.st.PublishAuthByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return edgeapi.AuthResponse{Reason: ReasonInvalidKey}, nil
	}
	if err != nil {
		return edgeapi.AuthResponse{}, err
	}
	if pa.Disabled {
		return edgeapi.AuthResponse{Reason: ReasonDisabled}, nil
	}
	// A live session elsewhere blocks the key. On the asking edge it cannot
	// be live (the edge refuses a live path itself), so an open session there
	// is one whose end is still on its way: a publisher reconnecting after a
	// drop must not be locked out by it. Nor by a session its edge stopped
	// reporting.
	if pa.SessionID != nil && pa.SessionEdgeID != req.EdgeID && time.Since(pa.SessionSeenAt) < s.cfg.StaleAfter {
		return edgeapi.AuthResponse{Reason: ReasonAlreadyLive}, nil
	}
	return edgeapi.AuthResponse{Allow: true, StreamID: pa.StreamID.String()}, nil
}

func (s *Service) authorizeRead(ctx context.Context, req edgeapi.AuthRequest) (edgeapi.AuthResponse, error) {
	key, ok := keyOf(req)
	if !ok || req.User != WorkerUser || req.Password == "" {
		return edgeapi.AuthResponse{Reason: ReasonInvalidCredentials}, nil
	}
	pa, err := s.st.PublishAuthByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return edgeapi.AuthResponse{Reason: ReasonInvalidCredentials}, nil
	}
	if err != nil {
		return edgeapi.AuthResponse{}, err
	}
	if pa.SessionID == nil {
		return edgeapi.AuthResponse{Reason: ReasonNotLive}, nil
	}
	want := WorkerPassword(s.cfg.EdgeSecret, pa.StreamID, *pa.SessionID)
	if !hmac.Equal([]byte(req.Password), []byte(want)) {
		return edgeapi.AuthResponse{Reason: ReasonInvalidCredentials}, nil
	}
	return edgeapi.AuthResponse{Allow: true, StreamID: pa.StreamID.String()}, nil
}

// HandleEvent applies an edge lifecycle event. Both types are idempotent.
func (s *Service) HandleEvent(ctx context.Context, ev edgeapi.Event) error {
	if ev.EdgeID == "" || ev.SourceID == "" {
		return fmt.Errorf("%w: edge_id and source_id are required", ErrInvalidEvent)
	}
	switch ev.Type {
	case edgeapi.EventReady:
		var media edgeapi.Media
		if ev.Media != nil {
			media = *ev.Media
		}
		kick, err := s.open(ctx, ev.EdgeID, ev.Edge, edgeapi.LiveStream{StreamID: ev.StreamID, Path: ev.Path,
			SourceType: ev.SourceType, SourceID: ev.SourceID, Protocol: ev.Protocol, Since: ev.Since, Media: media})
		if err != nil {
			return err
		}
		if kick != nil {
			s.kickNow(ctx, ev.Edge.KickURL, *kick)
		}
		return nil
	case edgeapi.EventNotReady:
		return s.end(ctx, ev.EdgeID, ev.SourceID, cmp.Or(ev.Reason, edgeapi.EndError), ev.Detail)
	}
	return fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, ev.Type)
}

// open opens (idempotently) the session of a publisher live on an edge and
// dispatches it. It returns a kick instead when the publisher must not be
// live: its key belongs to no enabled stream any more, or its session was
// closed by the API.
func (s *Service) open(ctx context.Context, edgeID string, edge edgeapi.EdgeInfo, ls edgeapi.LiveStream) (*edgeapi.Kick, error) {
	kick := func(reason string) *edgeapi.Kick {
		return &edgeapi.Kick{SourceID: ls.SourceID, Reason: reason}
	}
	key, ok := edgeapi.StreamKey(ls.Path)
	if !ok {
		return kick(KickUnknownStream), nil
	}
	st, err := s.st.GetStreamByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		reason := KickUnknownStream
		if id, perr := uuid.Parse(ls.StreamID); perr == nil {
			if _, gerr := s.st.GetStream(ctx, id); gerr == nil {
				reason = KickKeyRotated
			}
		}
		s.log.WarnContext(ctx, "live publisher has no stream; kicking it", "edge_id", edgeID, "source_id", ls.SourceID,
			"stream_ref", edgeapi.StreamRef(ls.Path), "reason", reason)
		return kick(reason), nil
	}
	if err != nil {
		return nil, err
	}
	if st.Disabled {
		return kick(KickDisabled), nil
	}
	var opened store.Opened
	err = s.st.InTx(ctx, func(tx *store.Store) error {
		var err error
		opened, err = tx.OpenSession(ctx, store.NewSession{StreamID: st.ID, EdgeID: edgeID, SourceID: ls.SourceID,
			Edge: edge, Source: store.SourceFromMedia(ls.Protocol, ls.Media), StartedAt: ls.Since,
			ResumeWithin: s.cfg.ReconnectGrace})
		if err != nil {
			return err
		}
		return s.recordOpened(ctx, tx, opened)
	})
	if err != nil {
		return nil, err
	}
	if opened.Resumed {
		// The publisher came back within the grace window: same session, same
		// worker (it waits for its source), same playback URL. Resuming
		// cleared the session's due worker stop.
		s.m.resumed.Inc()
		s.log.InfoContext(ctx, "publisher reconnected: session resumed", "stream", st, "session_id", opened.Session.ID,
			"edge_id", edgeID, "protocol", ls.Protocol)
		return nil, nil
	}
	for _, old := range opened.Superseded {
		s.m.ended.WithLabelValues(store.EndSuperseded).Inc()
		if err := s.stopNow(ctx, old.ID); err != nil {
			s.log.WarnContext(ctx, "stopping a superseded session", "session_id", old.ID, "err", err)
		}
	}
	if !opened.Created {
		if !opened.Session.Open() {
			return kick(KickSessionEnded), nil
		}
		return nil, nil // a repeated ready: already dispatched
	}
	sess := opened.Session
	s.log.InfoContext(ctx, "stream live", "stream", st, "session_id", sess.ID, "edge_id", edgeID,
		"protocol", ls.Protocol, "video_codec", ls.Media.VideoCodec, "width", ls.Media.Width, "height", ls.Media.Height)
	t, err := s.transcodes.build(ctx, st, sess)
	if err != nil {
		// The session stays live; the dispatcher's reconciler retries.
		s.log.ErrorContext(ctx, "building the transcode of a new session", "session_id", sess.ID, "err", err)
		return nil, nil
	}
	if err := s.disp.Dispatch(ctx, t); err != nil {
		s.log.ErrorContext(ctx, "dispatching a new session; the watchdog retries", "session_id", sess.ID, "err", err)
	}
	return nil, nil
}

// end closes the session of a publisher and stops its worker. Repeating it is
// harmless, and it is how a failed stop is retried (the edge retries the event).
func (s *Service) end(ctx context.Context, edgeID, sourceID, reason, detail string) error {
	var (
		sess  store.Session
		ended bool
	)
	err := s.st.InTx(ctx, func(tx *store.Store) error {
		var err error
		sess, ended, err = tx.EndSessionBySource(ctx, edgeID, sourceID, reason, detail, s.stopAfter(reason))
		if err != nil || !ended {
			return err
		}
		return s.recordEnded(ctx, tx, sess)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // never opened (refused or kicked before it was ready)
	}
	if err != nil {
		return err
	}
	if ended {
		s.m.ended.WithLabelValues(reason).Inc()
		s.log.InfoContext(ctx, "stream ended", "stream_id", sess.StreamID, "session_id", sess.ID, "edge_id", edgeID,
			"reason", reason, "duration", time.Since(sess.StartedAt).Round(time.Second))
	}
	// The worker is told now, or by Run when the reconnect grace has passed
	// (the publisher may come back and continue this session).
	return s.stopNow(ctx, sess.ID)
}

// Sync reconciles the sessions of an edge with its full live set and returns
// the publishers the edge must disconnect.
func (s *Service) Sync(ctx context.Context, req edgeapi.SyncRequest) (edgeapi.SyncResponse, error) {
	if req.EdgeID == "" {
		return edgeapi.SyncResponse{}, fmt.Errorf("%w: edge_id is required", ErrInvalidEvent)
	}
	open, err := s.st.OpenEdgeSessions(ctx, req.EdgeID)
	if err != nil {
		return edgeapi.SyncResponse{}, err
	}
	live := make(map[string]edgeapi.LiveStream, len(req.Live))
	for _, ls := range req.Live {
		live[ls.SourceID] = ls
	}
	seenAt := cmp.Or(req.Time, time.Now())
	var (
		res  edgeapi.SyncResponse
		errs []error
	)
	for _, es := range open {
		ls, ok := live[es.SourceID]
		if !ok {
			errs = append(errs, s.end(ctx, req.EdgeID, es.SourceID, EndEdgeLost, "not in the edge's live set"))
			continue
		}
		delete(live, es.SourceID)
		src := store.SourceFromMedia("", ls.Media)
		if err := s.st.UpdateSessionSource(ctx, es.ID, src, seenAt); err != nil {
			errs = append(errs, err)
		}
		key, _ := edgeapi.StreamKey(ls.Path)
		switch {
		case es.StreamDisabled:
			res.Kick = append(res.Kick, edgeapi.Kick{SourceID: es.SourceID, Reason: KickDisabled})
		case key != es.StreamKey:
			res.Kick = append(res.Kick, edgeapi.Kick{SourceID: es.SourceID, Reason: KickKeyRotated})
		case es.KickReason != nil:
			res.Kick = append(res.Kick, edgeapi.Kick{SourceID: es.SourceID, Reason: *es.KickReason})
		}
	}
	// Publishers live on the edge that have no open session: a missed ready.
	for _, ls := range req.Live {
		if _, unknown := live[ls.SourceID]; !unknown {
			continue
		}
		kick, err := s.open(ctx, req.EdgeID, req.Edge, ls)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if kick != nil {
			res.Kick = append(res.Kick, *kick)
		}
	}
	for _, k := range res.Kick {
		s.m.kicks.WithLabelValues(k.Reason).Inc()
	}
	return res, errors.Join(errs...)
}

// Disconnect kicks the live publisher of a stream (ErrNotLive when none).
// The kick is sent to its edge at once and repeated in the edge's sync
// answers until the edge reports the publisher gone.
func (s *Service) Disconnect(ctx context.Context, streamID uuid.UUID) (store.Session, error) {
	sess, err := s.st.OpenSessionOf(ctx, streamID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, ErrNotLive
	}
	if err != nil {
		return store.Session{}, err
	}
	sess, err = s.st.RequestKick(ctx, sess.ID, KickDisconnect)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, ErrNotLive
	}
	if err != nil {
		return store.Session{}, err
	}
	s.m.kicks.WithLabelValues(KickDisconnect).Inc()
	s.kickNow(ctx, sess.Edge.KickURL, edgeapi.Kick{SourceID: sess.SourceID, Reason: KickDisconnect})
	return sess, nil
}

// KickLive kicks the live publisher of a stream, if any, after a change that
// makes it unwelcome (the stream was disabled or its key rotated; reason
// KickDisabled or KickKeyRotated). The edge's next sync repeats the kick.
func (s *Service) KickLive(ctx context.Context, streamID uuid.UUID, reason string) {
	sess, err := s.st.OpenSessionOf(ctx, streamID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.WarnContext(ctx, "looking up a live session to kick", "stream_id", streamID, "err", err)
		}
		return
	}
	s.m.kicks.WithLabelValues(reason).Inc()
	s.kickNow(ctx, sess.Edge.KickURL, edgeapi.Kick{SourceID: sess.SourceID, Reason: reason})
}

// EndDeleted ends the open session of a stream that tx is deleting, in tx:
// session.ended (reason kicked, detail stream_deleted), its asset built
// with what was recorded, stream.idle. Once tx has committed, call the
// returned function: it tells the session's worker to stop and kicks the
// publisher. Without an open session it does nothing (a no-op function).
func (s *Service) EndDeleted(ctx context.Context, tx *store.Store, streamID uuid.UUID) (func(context.Context), error) {
	open, err := tx.OpenSessionOf(ctx, streamID)
	if errors.Is(err, store.ErrNotFound) {
		return func(context.Context) {}, nil
	}
	if err != nil {
		return nil, err
	}
	sess, ended, err := tx.EndSession(ctx, open.ID, edgeapi.EndKicked, KickStreamDeleted, 0)
	if err != nil {
		return nil, err
	}
	if ended {
		if err := s.recordEnd(ctx, tx, sess); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) {
		s.m.ended.WithLabelValues(edgeapi.EndKicked).Inc()
		s.m.kicks.WithLabelValues(KickStreamDeleted).Inc()
		if err := s.tellWorker(ctx, sess); err != nil {
			s.log.WarnContext(ctx, "telling the worker of a deleted stream to stop", "session_id", sess.ID, "err", err)
		}
		s.kickNow(ctx, sess.Edge.KickURL, edgeapi.Kick{SourceID: sess.SourceID, Reason: KickStreamDeleted})
		s.log.InfoContext(ctx, "stream ended", "stream_id", sess.StreamID, "session_id", sess.ID,
			"reason", KickStreamDeleted, "duration", time.Since(sess.StartedAt).Round(time.Second))
	}, nil
}

// kickNow calls an edge's kick endpoint, bounded by KickTimeout. A failure is
// only logged: the sync answer carries the kick too.
func (s *Service) kickNow(ctx context.Context, kickURL string, k edgeapi.Kick) {
	if kickURL == "" || k.SourceID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.KickTimeout)
	defer cancel()
	res, err := s.kicker.Kick(ctx, kickURL, edgeapi.KickRequest{Kick: []edgeapi.Kick{k}})
	if err != nil {
		s.log.WarnContext(ctx, "kicking a publisher; the next sync repeats it", "source_id", k.SourceID, "reason", k.Reason, "err", err)
		return
	}
	s.log.InfoContext(ctx, "publisher kicked", "source_id", k.SourceID, "reason", k.Reason, "kicked", res.Kicked)
}

// Source returns where the worker of an open session pulls it from, with its
// read credential. An unknown session gives store.ErrNotFound; a session that
// is over ErrSessionOver, and one whose publisher dropped within the
// reconnect grace ErrSessionPaused (both wrapped with the why).
func (s *Service) Source(ctx context.Context, sessionID uuid.UUID) (job.Source, error) {
	sess, err := s.st.GetSession(ctx, sessionID)
	if err != nil {
		return job.Source{}, err
	}
	if sess.Status == store.SessionFailed {
		return job.Source{}, fmt.Errorf("%w: session %s failed", ErrSessionOver, sess.ID)
	}
	if !sess.Open() {
		reason := deref(sess.EndReason)
		// Within the reconnect grace the worker's stop is not due yet: the
		// publisher may still resume the session.
		if resumable(reason) && sess.WorkerStoppedAt == nil && sess.WorkerStopAt != nil && time.Now().Before(*sess.WorkerStopAt) {
			return job.Source{}, fmt.Errorf("%w: session %s (%s) may resume until %s", ErrSessionPaused, sess.ID, reason,
				sess.WorkerStopAt.UTC().Format(time.RFC3339))
		}
		return job.Source{}, fmt.Errorf("%w: session %s ended (%s)", ErrSessionOver, sess.ID, reason)
	}
	st, err := s.st.GetStream(ctx, sess.StreamID)
	if err != nil {
		return job.Source{}, err
	}
	return s.transcodes.source(st, sess)
}

// WorkerEvent records what a worker reports about a session it runs.
// An unknown session gives store.ErrNotFound.
func (s *Service) WorkerEvent(ctx context.Context, sessionID uuid.UUID, ev job.SessionEvent) (err error) {
	sess, err := s.st.GetSession(ctx, sessionID)
	if err != nil {
		return err
	}
	log := s.log.With("stream_id", sess.StreamID, "session_id", sess.ID, "worker_id", ev.WorkerID)
	if ev.ID != uuid.Nil {
		first, forget, derr := s.stops.FirstDelivery(ctx, ev.ID)
		if derr != nil {
			log.WarnContext(ctx, "session event not deduplicated", "err", derr)
		}
		if !first {
			log.DebugContext(ctx, "session event delivered again, ignored", "event_id", ev.ID, "type", ev.Type)
			return nil
		}
		defer func() {
			if err != nil {
				forget()
			}
		}()
	}
	switch ev.Type {
	case job.EventStarted:
		if ev.WorkerID == "" {
			return fmt.Errorf("%w: worker_id is required", ErrInvalidEvent)
		}
		_, err = s.recordStarted(ctx, sessionID, ev.WorkerID, func(prev string) *time.Time {
			return s.lastSeen(ctx, prev)
		})
		log.InfoContext(ctx, "worker started the session", "renditions", ev.Renditions)
	case job.EventRestarted:
		err = s.recordError(ctx, event.TranscodeRestarted, sessionID, ev.WorkerID, cmp.Or(ev.Reason, "restarted"), false)
		log.WarnContext(ctx, "worker restarted the session's pipeline", "reason", ev.Reason)
	case job.EventFailed:
		err = s.recordError(ctx, event.TranscodeFailed, sessionID, ev.WorkerID, cmp.Or(ev.Reason, "failed"), true)
		if err == nil && sess.Open() {
			// The worker gave up: stop the watchdog from handing it around.
			err = s.disp.End(ctx, sess.StreamID, sess.ID)
		}
		log.ErrorContext(ctx, "worker gave up on the session", "reason", ev.Reason)
	case job.EventFinished:
		log.InfoContext(ctx, "worker finished the session", "reason", ev.Reason)
	default:
		return fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, ev.Type)
	}
	return err
}

// recordError records a worker's failure report and its event
// (transcode.restarted or transcode.failed) in one transaction.
func (s *Service) recordError(ctx context.Context, typ string, sessionID uuid.UUID, workerID, reason string, failed bool) error {
	return s.st.InTx(ctx, func(tx *store.Store) error {
		sess, err := tx.SetSessionError(ctx, sessionID, workerID, reason, failed)
		if err != nil {
			return err
		}
		return s.appendSession(ctx, tx, typ, sess, reason)
	})
}

// lastSeen is the last heartbeat of a worker, nil when unknown (a lookup
// failure is logged: the failover is recorded without its gap).
func (s *Service) lastSeen(ctx context.Context, workerID string) *time.Time {
	at, ok, err := s.cfg.Workers.LastSeen(ctx, workerID)
	if err != nil {
		s.log.WarnContext(ctx, "looking up a worker's last heartbeat for a failover event", "worker_id", workerID, "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	return &at
}

type metrics struct {
	publishes *prometheus.CounterVec
	reads     *prometheus.CounterVec
	ended     *prometheus.CounterVec
	kicks     *prometheus.CounterVec
	resumed   prometheus.Counter
	// workerStops counts the sessions whose worker was told to stop.
	workerStops prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, st *store.Store) (*metrics, error) {
	m := &metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_ingest_publish_total",
			Help: "Publish decisions of the API, by result (accepted, refused) and refusal reason.",
		}, []string{"result", "reason"}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_ingest_read_total",
			Help: "Edge read decisions of the API (workers pulling streams), by result and refusal reason.",
		}, []string{"result", "reason"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_ingest_sessions_ended_total",
			Help: "Sessions ended, by reason.",
		}, []string{"reason"}),
		kicks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_ingest_kicks_total",
			Help: "Publisher disconnections requested by the API, by reason.",
		}, []string{"reason"}),
		resumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dionysia_ingest_sessions_resumed_total",
			Help: "Sessions continued by a publisher that reconnected within the grace window.",
		}),
		workerStops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dionysia_ingest_worker_stops_total",
			Help: "Sessions whose worker was told to stop (at their end, or after the reconnect grace).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.publishes, m.reads, m.ended, m.kicks, m.resumed, m.workerStops, &liveCollector{st: st}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering ingest metrics: %w", err)
		}
	}
	return m, nil
}

// liveCollector counts live streams in the database at scrape time, so that
// every API replica reports the same, true number.
type liveCollector struct{ st *store.Store }

var liveDesc = prometheus.NewDesc("dionysia_ingest_live_streams", "Streams live now (with an open session).", nil, nil)

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) { ch <- liveDesc }

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := c.st.CountLiveStreams(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(liveDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(liveDesc, prometheus.GaugeValue, float64(n))
}
