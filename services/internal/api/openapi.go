package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v5"
)

// openAPIDoc is the OpenAPI 3.1 description of every route; a test fails when
// a route is missing from it or it names a route that does not exist.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document served at /api/v1/openapi.json.
func OpenAPI() []byte { return openAPIDoc }

func serveOpenAPI(c *echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", openAPIDoc)
}
