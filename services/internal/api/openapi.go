package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v5"
)

// openAPIDoc is the OpenAPI 3.1 description of every route. The tests
// validate it with kin-openapi, fail when a route is missing from it or it
// names a route that does not exist, and check every response the API tests
// receive against it (status, headers and body schema).
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document served at /api/v1/openapi.json.
func OpenAPI() []byte { return openAPIDoc }

func serveOpenAPI(c *echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", openAPIDoc)
}
