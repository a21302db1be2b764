package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/problem"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

// internalRoutes are the endpoints of the edges and the workers. They are not
// under /api/v1 and take no API key: each caller authenticates with its own
// shared secret (Authorization: Bearer <secret>).
func (s *Server) internalRoutes(g *echo.Group) {
	edge := g.Group("/edge", s.requireSecret("edge", func() string { return s.cfg.EdgeSecret }))
	edge.POST("/auth", s.edgeAuth)
	edge.POST("/events", s.edgeEvent)
	edge.POST("/sync", s.edgeSync)
	worker := s.requireSecret("worker", func() string { return s.cfg.WorkerSecret })
	g.POST("/sessions/:id/events", s.sessionEvent, worker)
	g.GET("/sessions/:id/source", s.sessionSource, worker)
	g.POST("/sessions/:id/health", s.sessionHealth, worker)
	g.POST("/sessions/:id/recording", s.sessionRecording, worker)
	g.GET("/sessions/:id/recording", s.sessionRecordingHistory, worker)
	g.GET("/assets/:id/playback", s.assetPlayback, worker)
}

// requireSecret checks the caller's shared secret in constant time: 503 when
// the secret is not configured, 401 when it is missing or wrong.
func (s *Server) requireSecret(who string, secret func() string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			if secret() == "" {
				return newProblem(http.StatusServiceUnavailable, "%s integration not configured", who)
			}
			if !edgeapi.CheckSecret(c.Request(), secret()) {
				return unauthorized("missing or wrong %s secret; send \"Authorization: Bearer <secret>\"", who)
			}
			return next(c)
		}
	}
}

// edgeService returns the ingest service (nil only without an edge secret,
// which requireSecret already answered).
func (s *Server) edgeService() (*ingest.Service, error) {
	if s.ingest == nil {
		return nil, newProblem(http.StatusServiceUnavailable, "edge integration not configured")
	}
	return s.ingest, nil
}

func (s *Server) edgeAuth(c *echo.Context) error {
	svc, err := s.edgeService()
	if err != nil {
		return err
	}
	var req edgeapi.AuthRequest
	if err := readInternal(c.Request(), &req); err != nil {
		return err
	}
	res, err := svc.Authorize(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) edgeEvent(c *echo.Context) error {
	svc, err := s.edgeService()
	if err != nil {
		return err
	}
	var ev edgeapi.Event
	if err := readInternal(c.Request(), &ev); err != nil {
		return err
	}
	if err := svc.HandleEvent(c.Request().Context(), ev); err != nil {
		return ingestError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) edgeSync(c *echo.Context) error {
	svc, err := s.edgeService()
	if err != nil {
		return err
	}
	var req edgeapi.SyncRequest
	if err := readInternal(c.Request(), &req); err != nil {
		return err
	}
	res, err := svc.Sync(c.Request().Context(), req)
	if err != nil {
		return ingestError(err)
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) sessionEvent(c *echo.Context) error {
	svc, err := s.edgeService()
	if err != nil {
		return err
	}
	id, err := pathID(c, "session")
	if err != nil {
		return err
	}
	var ev job.SessionEvent
	if err := readInternal(c.Request(), &ev); err != nil {
		return err
	}
	if ev.SessionID != uuid.Nil && ev.SessionID != id {
		return badRequest("session_id %s in the body differs from the path's %s", ev.SessionID, id)
	}
	err = svc.WorkerEvent(c.Request().Context(), id, ev)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no session with id %s", id)
	}
	if err != nil {
		return ingestError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// sessionSource tells a session's worker where to pull the stream from, with
// its read credential (job.SourcePath): 404 for an unknown session, 409 when
// the session is over, 503 with Retry-After while its publisher may still
// reconnect. The answer holds the stream key: it is never cached or logged.
func (s *Server) sessionSource(c *echo.Context) error {
	svc, err := s.edgeService()
	if err != nil {
		return err
	}
	id, err := pathID(c, "session")
	if err != nil {
		return err
	}
	src, err := svc.Source(c.Request().Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("no session with id %s", id)
	case errors.Is(err, ingest.ErrSessionOver):
		return conflict("%s: its worker must end it", err.Error())
	case errors.Is(err, ingest.ErrSessionPaused):
		// Expected while a publisher may still reconnect (the worker asks
		// every second): answered, not logged as a failure.
		c.Response().Header().Set("Retry-After", "1")
		p := problem.New(http.StatusServiceUnavailable, err.Error())
		p.Instance = c.Request().URL.Path
		problem.Write(c.Response(), p)
		return nil
	case err != nil:
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, src)
}

// ingestError maps the ingest service's errors: a malformed event is a 422,
// anything else a 500 (the caller retries).
func ingestError(err error) error {
	if errors.Is(err, ingest.ErrInvalidEvent) {
		return newProblem(http.StatusUnprocessableEntity, "%s", err.Error())
	}
	return err
}

// readInternal decodes the body of an internal endpoint. Unlike the public
// API it ignores unknown fields: an edge or worker of a newer version may send
// more, and a 4xx would make it drop the request for good.
func readInternal(req *http.Request, v any) error {
	if err := json.NewDecoder(req.Body).Decode(v); err != nil {
		return decodeError(err)
	}
	return nil
}
