package api_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apidoc"
	"github.com/stretchr/testify/require"
)

// TestAPIReferenceIsCurrent fails when docs/api-reference.md is not what the
// generator renders from the embedded OpenAPI document.
func TestAPIReferenceIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := apidoc.Render(api.OpenAPI())
	require.NoError(t, err)
	path := filepath.Join("..", "..", "..", "docs", "api-reference.md")
	got, err := os.ReadFile(path)
	require.NoError(t, err, "docs/api-reference.md is missing: run `%s` from the repository root", apidoc.Command)
	if bytes.Equal(got, want) {
		return
	}
	gotLines, wantLines := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	line := 0
	for line < len(gotLines) && line < len(wantLines) && bytes.Equal(gotLines[line], wantLines[line]) {
		line++
	}
	at := func(lines [][]byte) string {
		if line < len(lines) {
			return string(lines[line])
		}
		return "<end of file>"
	}
	t.Fatalf("docs/api-reference.md is stale: run `%s` from the repository root.\nFirst difference at line %d:\n  file:      %q\n  generated: %q",
		apidoc.Command, line+1, at(gotLines), at(wantLines))
}
