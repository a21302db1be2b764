package api

import (
	"errors"
	"net/http"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/labstack/echo/v5"
)

func (s *Server) apiKeyRoutes(g *echo.Group) {
	g.POST("", s.createAPIKey)
	g.GET("", s.listAPIKeys)
	g.GET("/:id", s.getAPIKey)
	g.DELETE("/:id", s.revokeAPIKey)
}

func apiKeyDoc(k store.APIKey) apiv1.APIKey {
	return apiv1.APIKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scope: k.Scope, CreatedAt: k.CreatedAt,
		LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

func (s *Server) createAPIKey(c *echo.Context) error {
	var req apiv1.APIKeyCreate
	if err := readBody(c.Request(), &req); err != nil {
		return err
	}
	if errs := validateAPIKeyCreate(&req); len(errs) > 0 {
		return invalid(errs)
	}
	k, key, err := s.store.CreateAPIKey(c.Request().Context(), req.Name, req.Scope)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/api-keys/"+k.ID.String())
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, apiv1.APIKeyCreated{APIKey: apiKeyDoc(k), Secret: key})
}

func (s *Server) listAPIKeys(c *echo.Context) error {
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	items, next, err := s.store.ListAPIKeys(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, apiKeyDoc))
}

func (s *Server) getAPIKey(c *echo.Context) error {
	id, err := pathID(c, "api key")
	if err != nil {
		return err
	}
	k, err := s.store.GetAPIKey(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no api key with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiKeyDoc(k))
}

func (s *Server) revokeAPIKey(c *echo.Context) error {
	id, err := pathID(c, "api key")
	if err != nil {
		return err
	}
	_, err = s.store.RevokeAPIKey(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no api key with id %s", id)
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
