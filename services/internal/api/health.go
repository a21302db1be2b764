package api

import (
	"context"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/labstack/echo/v5"
)

// healthz answers 200 while the process serves requests.
func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, apiv1.Health{Status: "ok"})
}

// readyz answers 200 when PostgreSQL and Redis answer within 2 s, 503 otherwise.
func (s *Server) readyz(c *echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	h := apiv1.Health{Status: "ok", Checks: map[string]string{"postgres": "ok", "redis": "ok"}}
	if err := s.pool.Ping(ctx); err != nil {
		h.Status, h.Checks["postgres"] = "unavailable", err.Error()
	}
	if err := s.redis.Ping(ctx).Err(); err != nil {
		h.Status, h.Checks["redis"] = "unavailable", err.Error()
	}
	if h.Status != "ok" {
		s.log.WarnContext(ctx, "not ready", "checks", h.Checks)
		return c.JSON(http.StatusServiceUnavailable, h)
	}
	return c.JSON(http.StatusOK, h)
}
