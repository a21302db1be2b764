package api

import (
	"context"
	"errors"
	"fmt"
	"github.com/dionysia/dionysia/pkg/problem"
	"net/http"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/labstack/echo/v5"
)

// problemError is an error that is answered with a given problem document.
type problemError struct {
	status int
	detail string
	fields []apiv1.FieldError
}

func (e *problemError) Error() string {
	msg := fmt.Sprintf("%d %s", e.status, e.detail)
	for _, f := range e.fields {
		msg += "; " + f.Field + ": " + f.Detail
	}
	return msg
}

// StatusCode implements echo.HTTPStatusCoder.
func (e *problemError) StatusCode() int { return e.status }

func newProblem(status int, format string, args ...any) *problemError {
	return &problemError{status: status, detail: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *problemError {
	return newProblem(http.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) *problemError {
	return newProblem(http.StatusNotFound, format, args...)
}

func conflict(format string, args ...any) *problemError {
	return newProblem(http.StatusConflict, format, args...)
}

func unauthorized(format string, args ...any) *problemError {
	return newProblem(http.StatusUnauthorized, format, args...)
}

func forbidden(format string, args ...any) *problemError {
	return newProblem(http.StatusForbidden, format, args...)
}

// invalid is the 422 answer naming every invalid field.
func invalid(fields []apiv1.FieldError) *problemError {
	detail := "the request has invalid fields"
	if len(fields) == 1 {
		detail = fields[0].Field + ": " + fields[0].Detail
	}
	return &problemError{status: http.StatusUnprocessableEntity, detail: detail, fields: fields}
}

func fieldError(field, format string, args ...any) apiv1.FieldError {
	return apiv1.FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// ladderFields converts a ladder validation error, prefixing each field.
func ladderFields(err error) []apiv1.FieldError {
	var ve *ladder.ValidationError
	if !errors.As(err, &ve) {
		return []apiv1.FieldError{{Field: "renditions", Detail: err.Error()}}
	}
	out := make([]apiv1.FieldError, len(ve.Fields))
	for i, f := range ve.Fields {
		out[i] = apiv1.FieldError{Field: f.Field, Detail: f.Reason}
	}
	return out
}

// toProblem maps any error a handler returns to a problem document. It is the
// only place where domain errors become HTTP statuses.
func toProblem(err error) apiv1.Problem {
	var (
		pe  *problemError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &pe):
		return problemDoc(pe.status, pe.detail, pe.fields)
	case errors.As(err, &mbe):
		return problemDoc(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit), nil)
	case errors.Is(err, store.ErrNotFound):
		return problemDoc(http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInUse), errors.Is(err, store.ErrBuiltin):
		return problemDoc(http.StatusConflict, err.Error(), nil)
	case errors.Is(err, store.ErrInvalid):
		return problemDoc(http.StatusUnprocessableEntity, err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded):
		return problemDoc(http.StatusServiceUnavailable, "the request timed out", nil)
	}
	if code := echo.StatusCode(err); code != 0 && code < 500 {
		detail := ""
		switch code {
		case http.StatusNotFound:
			detail = "no such route"
		case http.StatusMethodNotAllowed:
			detail = "the route does not accept this method"
		case http.StatusRequestEntityTooLarge:
			detail = "the request body is too large"
		}
		return problemDoc(code, detail, nil)
	}
	return problemDoc(http.StatusInternalServerError, "an internal error occurred; it has been logged", nil)
}

func problemDoc(status int, detail string, fields []apiv1.FieldError) apiv1.Problem {
	p := problem.New(status, detail)
	p.Errors = fields
	return p
}

// handleError is the server's echo.HTTPErrorHandler.
func (s *Server) handleError(c *echo.Context, err error) {
	if r, _ := echo.UnwrapResponse(c.Response()); r != nil && r.Committed {
		return
	}
	p := toProblem(err)
	p.Instance = c.Request().URL.Path
	if p.Status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "route", c.Path(), "error", err)
	}
	h := c.Response().Header()
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="dionysia"`)
	}
	problem.Write(c.Response(), p)
}
