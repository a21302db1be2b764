package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/labstack/echo/v5"
	"github.com/stretchr/testify/require"
)

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPIListsEveryRoute fails when a registered route is missing from the
// OpenAPI document or the document describes a route that does not exist.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	t.Parallel()
	b := setup(t)

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	r := b.do(http.MethodGet, "/api/v1/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, api.OpenAPI(), r.body)
	require.NoError(t, json.Unmarshal(r.body, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))

	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, ri := range b.srv.Echo().Router().Routes() {
		if ri.Method == echo.RouteNotFound || ri.Method == echo.RouteAny {
			continue
		}
		served[ri.Method+" "+echoParam.ReplaceAllString(ri.Path, "{$1}")] = true
	}
	require.NotEmpty(t, served)
	require.Empty(t, missing(served, documented), "routes missing from openapi.json")
	require.Empty(t, missing(documented, served), "openapi.json describes routes that are not served")
}

func missing(want, have map[string]bool) []string {
	var out []string
	for k := range want {
		if !have[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
