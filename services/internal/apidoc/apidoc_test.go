package apidoc_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apidoc"
	"github.com/stretchr/testify/require"
)

// spec exercises what the renderer must handle: document order, path-level
// parameters, $refs of every kind, allOf, nullable types, nested objects,
// pipes and angle brackets in text, and a tag shared with a schema name.
const spec = `{
  "openapi": "3.1.0",
  "info": {"title": "Zoo API", "version": "2.0.0", "description": "Send <token> in a header."},
  "security": [{"key": []}],
  "tags": [{"name": "animals", "description": "Every animal."}, {"name": "Animal"}],
  "paths": {
    "/zebras/{id}": {
      "parameters": [{"$ref": "#/components/parameters/ID"}],
      "get": {
        "summary": "Get a zebra",
        "tags": ["animals"],
        "operationId": "getZebra",
        "parameters": [{"name": "fields", "in": "query", "schema": {"type": "string", "pattern": "^(a|b)$"}, "description": "a | b"}],
        "responses": {
          "404": {"$ref": "#/components/responses/NotFound"},
          "200": {"description": "The zebra.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Animal"}}},
                  "headers": {"ETag": {"description": "Version."}}},
          "default": {"description": "Anything else."}
        }
      }
    },
    "/aardvarks": {
      "post": {
        "summary": "Add an aardvark",
        "tags": ["animals"],
        "security": [],
        "requestBody": {"$ref": "#/components/requestBodies/NewAnimal"},
        "responses": {"201": {"description": "Added."}}
      }
    },
    "/untagged": {"delete": {"responses": {"204": {"description": "Gone."}}}}
  },
  "components": {
    "securitySchemes": {"key": {"type": "http", "scheme": "bearer", "description": "A <secret> key."}},
    "parameters": {"ID": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}},
    "requestBodies": {"NewAnimal": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewAnimal"}}}}},
    "responses": {"NotFound": {"description": "No such animal.", "content": {"application/problem+json": {"schema": {"type": "object"}}}}},
    "schemas": {
      "Animal": {
        "type": "object",
        "required": ["name", "legs"],
        "properties": {
          "name": {"type": "string", "minLength": 1, "maxLength": 20},
          "legs": {"type": "integer", "minimum": 0, "maximum": 8, "default": 4},
          "tags": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"type": "string", "enum": ["wild", "tame"]}},
          "owner": {"type": ["string", "null"], "format": "uuid"},
          "home": {"type": "object", "required": ["zoo"], "properties": {"zoo": {"type": "string", "description": "Zoo | city"}}}
        }
      },
      "NewAnimal": {
        "additionalProperties": false,
        "allOf": [{"$ref": "#/components/schemas/Animal"}, {"type": "object", "properties": {"keeper": {"oneOf": [{"$ref": "#/components/schemas/Animal"}, {"type": "null"}]}}}]
      }
    }
  }
}`

func render(t *testing.T, doc string) string {
	t.Helper()
	out, err := apidoc.Render([]byte(doc))
	require.NoError(t, err)
	again, err := apidoc.Render([]byte(doc))
	require.NoError(t, err)
	require.Equal(t, string(out), string(again), "rendering must be deterministic")
	return string(out)
}

func TestRender(t *testing.T) {
	t.Parallel()
	out := render(t, spec)

	for _, want := range []string{
		"# Zoo API reference\n",
		"Send &lt;token&gt; in a header.",
		"- `key`: `Authorization: Bearer …`. A &lt;secret&gt; key.",
		// Operations keep document order within their tag; untagged ones come last.
		"| [animals](#animals) | GET | [`/zebras/{id}`](#get-zebrasid) | Get a zebra |\n" +
			"| [animals](#animals) | POST | [`/aardvarks`](#post-aardvarks) | Add an aardvark |\n" +
			"| [other](#other) | DELETE | [`/untagged`](#delete-untagged) |  |\n",
		// Path-level parameter first, resolved; pipes escaped.
		"| `id` | path | string (uuid) | yes |  |\n" +
			"| `fields` | query | string | no | a \\| b. Pattern `^(a\\|b)$`. |\n",
		// Status codes sorted, "default" last; component responses resolved.
		"| 200 OK | The zebra. Header `ETag`: Version. | [`Animal`](#schema-animal) (`application/json`) |\n" +
			"| 404 Not Found | No such animal. | object (`application/problem+json`) |\n" +
			"| default | Anything else. | — |\n",
		"Authentication: [`key`](#authentication). Operation ID: `getZebra`.",
		"Authentication: none.",
		"Request body (required):\n\n- `application/json`: [`NewAnimal`](#schema-newanimal)\n",
		"| `legs` | integer | yes | Default `4`. Range 0–8. |",
		"| `tags` | array of string | no | At least 1 item, no duplicates. Each item: one of `\"wild\"`, `\"tame\"`. |",
		"| `owner` | string (uuid) or null | no |  |",
		"| `home.zoo` | string | yes | Zoo \\| city. |",
		"Every field of [`Animal`](#schema-animal), and the fields below. Unknown fields are rejected.",
		"| `keeper` | [`Animal`](#schema-animal) or null | no |  |",
	} {
		require.Contains(t, out, want)
	}
	// The tag "Animal" has no operations: no section. The schema heading is
	// distinct from the tag "animals" anyway.
	require.NotContains(t, out, "\n## Animal\n")
	require.True(t, strings.HasSuffix(out, "|\n") && !strings.HasSuffix(out, "\n\n"), "exactly one trailing newline")
	requireLinksResolve(t, out)
}

func TestRenderRefusesBadDocuments(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"not json":           `{"openapi":`,
		"swagger 2":          `{"swagger": "2.0", "paths": {}}`,
		"unresolved param":   `{"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}], "responses": {}}}}}`,
		"unresolved resp":    `{"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/Nope"}}}}}}`,
		"unresolved body":    `{"openapi": "3.1.0", "paths": {"/a": {"post": {"requestBody": {"$ref": "#/components/requestBodies/Nope"}, "responses": {}}}}}`,
		"bad type":           `{"openapi": "3.1.0", "paths": {}, "components": {"schemas": {"A": {"type": 3}}}}`,
		"duplicate property": `{"openapi": "3.1.0", "paths": {}, "components": {"schemas": {"A": {"properties": {"x": {}, "x": {}}}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := apidoc.Render([]byte(doc))
			require.ErrorIs(t, err, apidoc.ErrBadDocument)
		})
	}
}

func TestRepeatedHeadingsGetNumberedAnchors(t *testing.T) {
	t.Parallel()
	// "GET /a-b" and "GET /a/-b" have the same GitHub slug: the second one
	// gets "-1", and the table of contents must link to it.
	out := render(t, `{"openapi": "3.1.0", "paths": {
	  "/a-b": {"get": {"summary": "one", "responses": {}}},
	  "/a/-b": {"get": {"summary": "two", "responses": {}}}}}`)
	require.Contains(t, out, "[`/a-b`](#get-a-b)")
	require.Contains(t, out, "[`/a/-b`](#get-a-b-1)")
	requireLinksResolve(t, out)
}

// TestRenderTheAPI renders the real document: every operation is listed and
// every in-page link lands on a heading.
func TestRenderTheAPI(t *testing.T) {
	t.Parallel()
	out := render(t, string(api.OpenAPI()))
	require.Contains(t, out, "### POST /api/v1/streams\n")
	require.Contains(t, out, "### Schema `Stream`\n")
	requireLinksResolve(t, out)
}

var (
	headingRe = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	linkRe    = regexp.MustCompile(`\]\(#([^)]+)\)`)
)

// requireLinksResolve checks every "(#anchor)" link against the anchors
// GitHub gives the document's headings.
func requireLinksResolve(t *testing.T, md string) {
	t.Helper()
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headingRe.FindAllStringSubmatch(md, -1) {
		slug := githubSlug(m[1])
		if n, ok := seen[slug]; ok {
			seen[slug] = n + 1
			slug += "-" + strconv.Itoa(n+1)
		} else {
			seen[slug] = 0
		}
		anchors[slug] = true
	}
	links := linkRe.FindAllStringSubmatch(md, -1)
	require.NotEmpty(t, links)
	for _, l := range links {
		require.True(t, anchors[l[1]], "link #%s has no heading", l[1])
	}
}

// githubSlug is GitHub's heading anchor rule, written independently of the
// package's: the text without Markdown code marks, lower case, characters
// other than letters, digits, '_', '-' and spaces dropped, spaces to '-'.
func githubSlug(h string) string {
	h = strings.ToLower(strings.ReplaceAll(h, "`", ""))
	return strings.ReplaceAll(regexp.MustCompile(`[^\p{L}\p{M}\p{N}_ -]`).ReplaceAllString(h, ""), " ", "-")
}
