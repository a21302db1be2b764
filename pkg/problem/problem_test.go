package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/problem"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "1")
	problem.Write(rec, problem.Problem{Type: "about:blank", Title: "Unprocessable Entity", Status: 422, Detail: "name: required",
		Errors: []problem.FieldError{{Field: "name", Detail: "required"}}})
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	require.Equal(t, problem.ContentType, rec.Header().Get("Content-Type"))
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	require.Equal(t, "1", rec.Header().Get("Retry-After"), "headers set before are kept")
	require.JSONEq(t, `{"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"name: required",
		"errors":[{"field":"name","detail":"required"}]}`, rec.Body.String())
}

func TestError(t *testing.T) {
	rec := httptest.NewRecorder()
	problem.Error(rec, http.StatusNotFound, "stream is not live")
	var p problem.Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Equal(t, problem.New(http.StatusNotFound, "stream is not live"), p)
	require.Equal(t, "Not Found", p.Title)
}
