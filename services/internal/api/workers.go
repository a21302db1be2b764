package api

import (
	"net/http"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/labstack/echo/v5"
)

func (s *Server) workerRoutes(g *echo.Group) {
	g.GET("/workers", s.listWorkers)
}

// listWorkers lists the worker fleet from its Redis heartbeats: every worker
// seen in the last minutes, with its state (up, lagging, gone).
func (s *Server) listWorkers(c *echo.Context) error {
	ws, err := s.fleet.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.Worker]{Data: make([]apiv1.Worker, len(ws))}
	for i, w := range ws {
		out.Data[i] = workerDoc(w)
	}
	return c.JSON(http.StatusOK, out)
}

func workerDoc(w fleet.WorkerStatus) apiv1.Worker {
	enc := w.Encoders
	if enc == nil {
		enc = []string{}
	}
	return apiv1.Worker{ID: w.ID, Host: w.Host, OriginURL: w.OriginURL, Class: w.Class, Capacity: w.Capacity, Load: w.Load,
		State: string(w.State), Encoders: enc, Version: w.Version, StartedAt: w.StartedAt, LastSeen: w.LastSeen}
}
