package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

func (s *Server) streamRoutes(g *echo.Group) {
	g.POST("/streams", s.createStream)
	g.GET("/streams", s.listStreams)
	g.GET("/streams/:id", s.getStream)
	g.PATCH("/streams/:id", s.updateStream)
	g.DELETE("/streams/:id", s.deleteStream)
	g.POST("/streams/:id/stream-key", s.rotateStreamKey)
	g.GET("/streams/:id/sessions", s.listSessions)
	g.POST("/streams/:id/disconnect", s.disconnectStream)
	g.POST("/streams/:id/playback-token", s.createPlaybackToken)
}

// IngestURLs returns where a publisher sends the stream with key: the edge's
// RTMP, SRT, RTSP and WHIP endpoints at their public address.
func IngestURLs(p config.PublicURLs, key string) apiv1.IngestURLs {
	hp := func(port int) string { return net.JoinHostPort(p.EdgeHost, strconv.Itoa(port)) }
	return apiv1.IngestURLs{
		RTMP: "rtmp://" + hp(p.RTMPPort) + "/live/" + key,
		SRT:  "srt://" + hp(p.SRTPort) + "?streamid=publish:live/" + key,
		RTSP: "rtsp://" + hp(p.RTSPPort) + "/live/" + key,
		WHIP: "http://" + hp(p.WebRTCPort) + "/live/" + key + "/whip",
	}
}

// PlaybackURLs returns the router's URLs of a stream's outputs.
func PlaybackURLs(p config.PublicURLs, id uuid.UUID, outputs []string) apiv1.PlaybackURLs {
	var out apiv1.PlaybackURLs
	base := p.PlaybackBaseURL + "/live/" + id.String()
	if slices.Contains(outputs, job.OutputHLS) {
		out.HLS = base + "/index.m3u8"
	}
	if slices.Contains(outputs, job.OutputDASH) {
		out.DASH = base + "/manifest.mpd"
	}
	return out
}

// streamDoc is a stream's JSON with its open session (nil when not live).
func (s *Server) streamDoc(st store.Stream, open *store.Session) apiv1.Stream {
	return streamDoc(s.cfg.Public, st, open)
}

func streamDoc(public config.PublicURLs, st store.Stream, open *store.Session) apiv1.Stream {
	var sess *apiv1.Session
	if open != nil {
		d := sessionDoc(*open)
		sess = &d
	}
	return apiv1.Stream{
		ID: st.ID, Name: st.Name, StreamKey: st.StreamKey,
		Profile: apiv1.ProfileRef{ID: st.ProfileID, Name: st.ProfileName},
		Outputs: st.Outputs, Hardware: st.Hardware, PlaybackPolicy: st.PlaybackPolicy,
		SegmentDuration: st.SegmentDuration, PlaylistWindowSize: st.PlaylistWindowSize,
		Disabled: st.Disabled, Status: st.Status,
		Recording:  apiv1.Recording{Mode: st.RecordingMode, DeleteAfterDays: st.DeleteAfterDays},
		DVRWindowS: st.DVRWindowS, ThumbnailIntervalS: st.ThumbnailIntervalS,
		Ingest:    IngestURLs(public, st.StreamKey),
		Playback:  PlaybackURLs(public, st.ID, st.Outputs),
		Session:   sess,
		Health:    streamHealthDoc(st, open),
		CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt,
	}
}

// recordingSettings converts a validated request's recording (nil: absent).
func recordingSettings(r *apiv1.RecordingSetting) *store.RecordingSettings {
	if r == nil || r.Mode == nil {
		return nil
	}
	return &store.RecordingSettings{Mode: *r.Mode, DeleteAfterDays: r.DeleteAfterDays}
}

// resolveProfile finds a stream's profile by name or id; an unknown one is a
// 422 naming the profile field.
func (s *Server) resolveProfile(c *echo.Context, ref string) (store.Profile, error) {
	p, err := s.store.ResolveProfile(c.Request().Context(), ref)
	if errors.Is(err, store.ErrNotFound) {
		return p, invalid([]apiv1.FieldError{fieldError("profile", "no profile with name or id %q", ref)})
	}
	return p, err
}

func (s *Server) createStream(c *echo.Context) error {
	var req apiv1.StreamCreate
	if err := readBody(c.Request(), &req); err != nil {
		return err
	}
	if errs := validateStreamCreate(req); len(errs) > 0 {
		return invalid(errs)
	}
	ref := store.DefaultProfile
	if req.Profile != nil {
		ref = *req.Profile
	}
	p, err := s.resolveProfile(c, ref)
	if err != nil {
		return err
	}
	n := store.NewStream{Name: req.Name, ProfileID: p.ID, Outputs: req.Outputs}
	if req.Hardware != nil {
		n.Hardware = *req.Hardware
	}
	if req.PlaybackPolicy != nil {
		n.PlaybackPolicy = *req.PlaybackPolicy
	}
	if req.SegmentDuration != nil {
		n.SegmentDuration = *req.SegmentDuration
	}
	if req.PlaylistWindowSize != nil {
		n.PlaylistWindowSize = *req.PlaylistWindowSize
	}
	if req.Disabled != nil {
		n.Disabled = *req.Disabled
	}
	if r := recordingSettings(req.Recording); r != nil {
		n.RecordingMode, n.DeleteAfterDays = r.Mode, r.DeleteAfterDays
	}
	if req.DVRWindowS != nil {
		n.DVRWindowS = *req.DVRWindowS
	}
	if req.ThumbnailIntervalS != nil {
		n.ThumbnailIntervalS = *req.ThumbnailIntervalS
	}
	var st store.Stream
	err = s.store.InTx(c.Request().Context(), func(tx *store.Store) error {
		var err error
		if st, err = tx.CreateStream(c.Request().Context(), n); err != nil {
			return err
		}
		return s.appendStreamEvent(c, tx, event.StreamCreated, st)
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/streams/"+st.ID.String())
	return c.JSON(http.StatusCreated, s.streamDoc(st, nil))
}

func (s *Server) listStreams(c *echo.Context) error {
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	items, next, err := s.store.ListStreams(c.Request().Context(), page)
	if err != nil {
		return err
	}
	ids := make([]uuid.UUID, 0, len(items))
	for _, st := range items {
		if st.Status == store.StatusLive {
			ids = append(ids, st.ID)
		}
	}
	open, err := s.store.OpenSessionsOf(c.Request().Context(), ids)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, func(st store.Stream) apiv1.Stream {
		if sess, ok := open[st.ID]; ok {
			return s.streamDoc(st, &sess)
		}
		return s.streamDoc(st, nil)
	}))
}

// withSession returns a stream's JSON with its open session, if any.
func (s *Server) withSession(c *echo.Context, st store.Stream) (apiv1.Stream, error) {
	sess, err := s.store.OpenSessionOf(c.Request().Context(), st.ID)
	if errors.Is(err, store.ErrNotFound) {
		return s.streamDoc(st, nil), nil
	}
	if err != nil {
		return apiv1.Stream{}, err
	}
	return s.streamDoc(st, &sess), nil
}

func (s *Server) loadStream(c *echo.Context) (store.Stream, error) {
	id, err := pathID(c, "stream")
	if err != nil {
		return store.Stream{}, err
	}
	st, err := s.store.GetStream(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return st, notFound("no stream with id %s", id)
	}
	return st, err
}

func (s *Server) getStream(c *echo.Context) error {
	st, err := s.loadStream(c)
	if err != nil {
		return err
	}
	doc, err := s.withSession(c, st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

func (s *Server) updateStream(c *echo.Context) error {
	id, err := pathID(c, "stream")
	if err != nil {
		return err
	}
	var req apiv1.StreamUpdate
	if err := readBody(c.Request(), &req); err != nil {
		return err
	}
	if errs := validateStreamUpdate(req); len(errs) > 0 {
		return invalid(errs)
	}
	u := store.StreamUpdate{Name: req.Name, Outputs: req.Outputs, Hardware: req.Hardware, PlaybackPolicy: req.PlaybackPolicy,
		SegmentDuration: req.SegmentDuration, PlaylistWindowSize: req.PlaylistWindowSize, Disabled: req.Disabled,
		Recording: recordingSettings(req.Recording), DVRWindowS: req.DVRWindowS, ThumbnailIntervalS: req.ThumbnailIntervalS}
	if req.Profile != nil {
		p, err := s.resolveProfile(c, *req.Profile)
		if err != nil {
			return err
		}
		u.ProfileID = &p.ID
	}
	var st store.Stream
	err = s.store.InTx(c.Request().Context(), func(tx *store.Store) error {
		var err error
		if st, err = tx.UpdateStream(c.Request().Context(), id, u); err != nil {
			return err
		}
		return s.appendStreamEvent(c, tx, event.StreamUpdated, st)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no stream with id %s", id)
	}
	if err != nil {
		return err
	}
	if req.PlaybackPolicy != nil {
		// The database is the truth; Redis is what routers and origins read
		// on every request. Apply the change there now (they follow within
		// about a second); the dispatcher repairs any drift on its next pass.
		if _, err := s.owners.SetPolicy(c.Request().Context(), st.ID.String(), st.PlaybackPolicy); err != nil {
			s.log.ErrorContext(c.Request().Context(), "applying a playback policy change to live playback", "stream_id", st.ID, "err", err)
			c.Response().Header().Set("Retry-After", "1")
			return newProblem(http.StatusServiceUnavailable,
				"playback_policy %q is saved but could not be applied to live playback yet (Redis unavailable); repeat the request", st.PlaybackPolicy)
		}
	}
	if st.Disabled && s.ingest != nil {
		// A disabled stream must not stay live: kick its publisher (the
		// edge's next sync repeats the kick until it is gone).
		s.ingest.KickLive(c.Request().Context(), st.ID, ingest.KickDisabled)
	}
	doc, err := s.withSession(c, st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

func (s *Server) deleteStream(c *echo.Context) error {
	id, err := pathID(c, "stream")
	if err != nil {
		return err
	}
	after := func(context.Context) {}
	err = s.store.InTx(c.Request().Context(), func(tx *store.Store) error {
		st, err := tx.GetStream(c.Request().Context(), id)
		if err != nil {
			return err
		}
		// A live session ends first (session.ended, stream.idle); its
		// worker and publisher are stopped once the deletion committed.
		if s.ingest != nil {
			if after, err = s.ingest.EndDeleted(c.Request().Context(), tx, id); err != nil {
				return err
			}
		}
		// The data is the stream as it was when it was deleted.
		if err := s.appendStreamEvent(c, tx, event.StreamDeleted, st); err != nil {
			return err
		}
		// Its assets outlive it: one still recording is built with what
		// its worker reported (its session goes with the stream).
		if _, err := tx.EndStreamAssets(c.Request().Context(), id, ingest.FinalizeDelay); err != nil {
			return err
		}
		return tx.DeleteStream(c.Request().Context(), id)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no stream with id %s", id)
	}
	if err != nil {
		return err
	}
	after(c.Request().Context())
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) rotateStreamKey(c *echo.Context) error {
	id, err := pathID(c, "stream")
	if err != nil {
		return err
	}
	var st store.Stream
	err = s.store.InTx(c.Request().Context(), func(tx *store.Store) error {
		var err error
		if st, err = tx.RotateStreamKey(c.Request().Context(), id); err != nil {
			return err
		}
		// The key is a secret: the event says that the stream changed, not how.
		return s.appendStreamEvent(c, tx, event.StreamUpdated, st)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no stream with id %s", id)
	}
	if err != nil {
		return err
	}
	if s.ingest != nil {
		// The old key is refused from now on; its live publisher goes too.
		s.ingest.KickLive(c.Request().Context(), st.ID, ingest.KickKeyRotated)
	}
	doc, err := s.withSession(c, st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

func sessionDoc(ss store.Session) apiv1.Session {
	src := ss.Source
	return apiv1.Session{
		ID: ss.ID, Status: ss.Status, EdgeID: ss.EdgeID, Protocol: deref(src.Protocol),
		Source: apiv1.Source{
			VideoCodec: deref(src.VideoCodec), VideoProfile: deref(src.VideoProfile), Width: deref(src.Width),
			Height: deref(src.Height), FrameRate: deref(src.FrameRate), AudioCodec: deref(src.AudioCodec),
			AudioChannels: deref(src.AudioChannels), AudioSampleRate: deref(src.AudioSampleRate), BitrateKbps: deref(src.BitrateKbps),
		},
		WorkerID: ss.WorkerID, LastError: ss.LastError, StartedAt: ss.StartedAt, EndedAt: ss.EndedAt,
		EndReason: ss.EndReason, EndDetail: ss.EndDetail, KickReason: ss.KickReason,
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *Server) listSessions(c *echo.Context) error {
	st, err := s.loadStream(c)
	if err != nil {
		return err
	}
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	items, next, err := s.store.ListSessions(c.Request().Context(), st.ID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, sessionDoc))
}

// disconnectStream kicks the stream's live publisher. It answers 202 with
// the stream: the session closes when the edge reports the publisher gone.
func (s *Server) disconnectStream(c *echo.Context) error {
	st, err := s.loadStream(c)
	if err != nil {
		return err
	}
	svc, err := s.edgeService()
	if err != nil {
		return err
	}
	sess, err := svc.Disconnect(c.Request().Context(), st.ID)
	if errors.Is(err, ingest.ErrNotLive) {
		return conflict("stream %s is not live", st.ID)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, s.streamDoc(st, &sess))
}

// Limits of a playback token's lifetime.
const (
	defaultTokenTTL = time.Hour
	maxTokenTTL     = 7 * 24 * time.Hour
)

func (s *Server) createPlaybackToken(c *echo.Context) error {
	st, err := s.loadStream(c)
	if err != nil {
		return err
	}
	var req apiv1.PlaybackTokenCreate
	if c.Request().ContentLength != 0 {
		if err := readBody(c.Request(), &req); err != nil {
			return err
		}
	}
	ttl := defaultTokenTTL
	var errs []apiv1.FieldError
	if req.TTLSeconds != nil {
		ttl = time.Duration(*req.TTLSeconds) * time.Second
		if ttl < time.Minute || ttl > maxTokenTTL {
			errs = append(errs, fieldError("ttl_seconds", "must be between 60 and %d seconds, got %d", int(maxTokenTTL.Seconds()), *req.TTLSeconds))
		}
	}
	if req.IP != "" {
		if _, perr := netip.ParseAddr(req.IP); perr != nil {
			errs = append(errs, fieldError("ip", "must be an IPv4 or IPv6 address, got %q", req.IP))
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	if s.signer == nil {
		return newProblem(http.StatusServiceUnavailable, "playback signing not configured (DIONYSIA_PLAYBACK_KEYS)")
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	token, err := s.signer.MintAt(st.ID.String(), exp, req.IP)
	if err != nil {
		return err
	}
	out := apiv1.PlaybackToken{Token: token, ExpiresAt: exp.UTC()}
	base := s.cfg.Public.PlaybackBaseURL
	if slices.Contains(st.Outputs, job.OutputHLS) {
		out.HLS = base + playback.URLPath(st.ID.String(), token, "index.m3u8")
	}
	if slices.Contains(st.Outputs, job.OutputDASH) {
		out.DASH = base + playback.URLPath(st.ID.String(), token, "manifest.mpd")
	}
	return c.JSON(http.StatusOK, out)
}
