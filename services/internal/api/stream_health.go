package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/health"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

// sessionHealth records a worker's health report on its session
// (job.HealthPath): 204, 404 for an unknown session, 400 when the body's
// session differs from the path's. Reports for a closed session are
// accepted and ignored.
func (s *Server) sessionHealth(c *echo.Context) error {
	id, err := pathID(c, "session")
	if err != nil {
		return err
	}
	var rep job.HealthReport
	if err := readInternal(c.Request(), &rep); err != nil {
		return err
	}
	if rep.SessionID != uuid.Nil && rep.SessionID != id {
		return badRequest("session_id %s in the body differs from the path's %s", rep.SessionID, id)
	}
	err = s.health.Record(c.Request().Context(), id, rep)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no session with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// streamHealthDoc is a stream's health as of now: from its open session's
// last report, unknown when idle or stale.
func streamHealthDoc(st store.Stream, open *store.Session) apiv1.StreamHealth {
	in := health.Input{Now: time.Now(), SegmentDurationS: st.SegmentDuration}
	if open != nil {
		in.Live, in.Report, in.ReceivedAt = open.Open(), open.Health.Report, open.Health.UpdatedAt
	}
	return health.Evaluate(in)
}
