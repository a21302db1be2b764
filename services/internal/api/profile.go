package api

import (
	"errors"
	"net/http"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/labstack/echo/v5"
)

func (s *Server) profileRoutes(g *echo.Group) {
	g.POST("/profiles", s.createProfile)
	g.GET("/profiles", s.listProfiles)
	g.GET("/profiles/:id", s.getProfile)
	g.PATCH("/profiles/:id", s.updateProfile)
	g.DELETE("/profiles/:id", s.deleteProfile)
}

func profileDoc(p store.Profile) apiv1.Profile {
	return apiv1.Profile{ID: p.ID, Name: p.Name, Description: p.Description, Builtin: p.Builtin,
		Renditions: p.Ladder.Renditions, Audio: p.Ladder.Audio, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// loadProfile finds the profile named by the :id path parameter, an id or a name.
func (s *Server) loadProfile(c *echo.Context) (store.Profile, error) {
	ref := c.Param("id")
	p, err := s.store.ResolveProfile(c.Request().Context(), ref)
	if errors.Is(err, store.ErrNotFound) {
		return p, notFound("no profile with id or name %q", ref)
	}
	return p, err
}

func nameTaken(name string) error {
	p := conflict("a profile named %q already exists", name)
	p.fields = []apiv1.FieldError{fieldError("name", "is taken")}
	return p
}

func (s *Server) createProfile(c *echo.Context) error {
	var req apiv1.ProfileCreate
	if err := readBody(c.Request(), &req); err != nil {
		return err
	}
	l, errs := validateProfileCreate(req)
	if len(errs) > 0 {
		return invalid(errs)
	}
	p, err := s.store.CreateProfile(c.Request().Context(), store.NewProfile{Name: req.Name, Description: req.Description, Ladder: l})
	if errors.Is(err, store.ErrConflict) {
		return nameTaken(req.Name)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/profiles/"+p.ID.String())
	return c.JSON(http.StatusCreated, profileDoc(p))
}

func (s *Server) listProfiles(c *echo.Context) error {
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	items, next, err := s.store.ListProfiles(c.Request().Context(), page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, profileDoc))
}

func (s *Server) getProfile(c *echo.Context) error {
	p, err := s.loadProfile(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, profileDoc(p))
}

func builtinProblem(p store.Profile, verb string) error {
	return conflict("profile %q is built in and cannot be %s; create your own profile instead", p.Name, verb)
}

func (s *Server) updateProfile(c *echo.Context) error {
	p, err := s.loadProfile(c)
	if err != nil {
		return err
	}
	var req apiv1.ProfileUpdate
	if err := readBody(c.Request(), &req); err != nil {
		return err
	}
	if p.Builtin {
		return builtinProblem(p, "modified")
	}
	l, errs := validateProfileUpdate(p.Ladder, req)
	if len(errs) > 0 {
		return invalid(errs)
	}
	up, err := s.store.UpdateProfile(c.Request().Context(), p.ID, store.ProfileUpdate{Name: req.Name, Description: req.Description, Ladder: l})
	switch {
	case errors.Is(err, store.ErrConflict):
		return nameTaken(*req.Name)
	case errors.Is(err, store.ErrBuiltin):
		return builtinProblem(p, "modified")
	case errors.Is(err, store.ErrNotFound):
		return notFound("no profile with id %s", p.ID)
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, profileDoc(up))
}

func (s *Server) deleteProfile(c *echo.Context) error {
	p, err := s.loadProfile(c)
	if err != nil {
		return err
	}
	err = s.store.DeleteProfile(c.Request().Context(), p.ID)
	switch {
	case errors.Is(err, store.ErrBuiltin):
		return builtinProblem(p, "deleted")
	case errors.Is(err, store.ErrInUse):
		return conflict("profile %q is used by at least one stream; move those streams to another profile first", p.Name)
	case errors.Is(err, store.ErrNotFound):
		return notFound("no profile with id %s", p.ID)
	case err != nil:
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
