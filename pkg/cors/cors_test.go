package cors_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/cors"
)

func TestPreflight(t *testing.T) {
	rec := httptest.NewRecorder()
	cors.Preflight(rec)
	require.Equal(t, http.StatusNoContent, rec.Code)
	h := rec.Header()
	require.Equal(t, "*", h.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "GET, HEAD, OPTIONS", h.Get("Access-Control-Allow-Methods"))
	require.Equal(t, "Range, If-None-Match, If-Modified-Since", h.Get("Access-Control-Allow-Headers"))
	require.Equal(t, "86400", h.Get("Access-Control-Max-Age"))
	require.Equal(t, "Content-Length, Content-Range, ETag, Last-Modified, Age, Retry-After, X-Dionysia-Worker",
		h.Get("Access-Control-Expose-Headers"))
}
