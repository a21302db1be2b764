package api

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
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

func (s *Server) streamDoc(st store.Stream) apiv1.Stream {
	return apiv1.Stream{
		ID: st.ID, Name: st.Name, StreamKey: st.StreamKey,
		Profile: apiv1.ProfileRef{ID: st.ProfileID, Name: st.ProfileName},
		Outputs: st.Outputs, Hardware: st.Hardware, PlaybackPolicy: st.PlaybackPolicy,
		SegmentDuration: st.SegmentDuration, PlaylistWindowSize: st.PlaylistWindowSize,
		Disabled: st.Disabled, Status: st.Status,
		Ingest:    IngestURLs(s.cfg.Public, st.StreamKey),
		Playback:  PlaybackURLs(s.cfg.Public, st.ID, st.Outputs),
		CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt,
	}
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
	st, err := s.store.CreateStream(c.Request().Context(), n)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/streams/"+st.ID.String())
	return c.JSON(http.StatusCreated, s.streamDoc(st))
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
	return c.JSON(http.StatusOK, listOf(items, next, s.streamDoc))
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
	return c.JSON(http.StatusOK, s.streamDoc(st))
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
		SegmentDuration: req.SegmentDuration, PlaylistWindowSize: req.PlaylistWindowSize, Disabled: req.Disabled}
	if req.Profile != nil {
		p, err := s.resolveProfile(c, *req.Profile)
		if err != nil {
			return err
		}
		u.ProfileID = &p.ID
	}
	st, err := s.store.UpdateStream(c.Request().Context(), id, u)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no stream with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.streamDoc(st))
}

func (s *Server) deleteStream(c *echo.Context) error {
	id, err := pathID(c, "stream")
	if err != nil {
		return err
	}
	err = s.store.DeleteStream(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no stream with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) rotateStreamKey(c *echo.Context) error {
	id, err := pathID(c, "stream")
	if err != nil {
		return err
	}
	st, err := s.store.RotateStreamKey(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no stream with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.streamDoc(st))
}
