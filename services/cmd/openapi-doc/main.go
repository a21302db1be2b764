// Command openapi-doc prints the management API reference, the embedded
// OpenAPI document (services/internal/api/openapi.json) rendered as Markdown.
// From the repository root:
//
//	go run ./services/cmd/openapi-doc > docs/api-reference.md
//
// A test in services/internal/api fails when the committed file differs from
// this output.
package main

import (
	"fmt"
	"os"

	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apidoc"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: go run ./services/cmd/openapi-doc > docs/api-reference.md (no arguments)")
		os.Exit(2)
	}
	out, err := apidoc.Render(api.OpenAPI())
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi-doc: rendering the API reference:", err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-doc: writing the API reference:", err)
		os.Exit(1)
	}
}
