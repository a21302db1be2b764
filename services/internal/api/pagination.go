package api

import (
	"encoding/base64"
	"strconv"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

// Page sizes of list endpoints.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// pageFromQuery reads ?limit= and ?cursor=. The cursor is opaque to clients:
// the base64url of the last id of the previous page.
func pageFromQuery(c *echo.Context) (store.Page, error) {
	page := store.Page{Limit: defaultPageSize}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			p := badRequest("limit must be an integer between 1 and %d, got %q", maxPageSize, v)
			p.fields = []apiv1.FieldError{fieldError("limit", "must be an integer between 1 and %d", maxPageSize)}
			return page, p
		}
		page.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		id, err2 := uuid.FromBytes(b)
		if err != nil || err2 != nil {
			p := badRequest("cursor is not one this API returned")
			p.fields = []apiv1.FieldError{fieldError("cursor", "must be a next_cursor value from a previous page")}
			return page, p
		}
		page.After = &id
	}
	return page, nil
}

func encodeCursor(id *uuid.UUID) *string {
	if id == nil {
		return nil
	}
	s := base64.RawURLEncoding.EncodeToString(id[:])
	return &s
}

func listOf[T, U any](items []T, next *uuid.UUID, conv func(T) U) apiv1.List[U] {
	out := apiv1.List[U]{Data: make([]U, len(items)), NextCursor: encodeCursor(next)}
	for i, it := range items {
		out.Data[i] = conv(it)
	}
	return out
}

// pathID parses the :id path parameter. An id that is not a UUID names no
// resource, so it is a 404 like an unknown one.
func pathID(c *echo.Context, what string) (uuid.UUID, error) {
	raw := c.Param("id")
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, notFound("no %s with id %q", what, raw)
	}
	return id, nil
}
