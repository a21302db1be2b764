// Package conftest checks, from a binary's tests, that docs/configuration.md
// documents every setting of the binary in the binary's own section, and
// nothing else: each module's tests check their binaries, so the page covers
// every binary although the modules cannot import each other.
package conftest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// Doc returns docs/configuration.md, found from the test's working directory
// upwards (every module lives under the repository root).
func Doc(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "docs", "configuration.md"))
		if err == nil {
			return string(b)
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "docs/configuration.md not found above the test's directory")
		dir = parent
	}
}

// Section returns the part of doc under the level-2 heading "## title", up
// to the next level-2 heading.
func Section(t testing.TB, doc, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+title+"\n")
	require.True(t, ok, "docs/configuration.md has no section %q", "## "+title)
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// tableVar is the first cell of a table row naming a variable.
var tableVar = regexp.MustCompile("(?m)^\\| `(DIONYSIA_[A-Z0-9_]+)` \\|")

// RequireDocumented fails unless the section "## title" of
// docs/configuration.md has a table row for every setting bound in the flag
// sets (the variable first, then its flag) and for every environment-only
// variable in extra, and no row for a variable the binary does not read.
func RequireDocumented(t testing.TB, title string, extra []conf.Var, sets ...*pflag.FlagSet) {
	t.Helper()
	sec := Section(t, Doc(t), title)
	want := map[string]bool{}
	for _, v := range extra {
		want[v.Env] = true
		require.True(t, strings.Contains(sec, "| `"+v.Env+"` |"), "section %q must document %s", title, v.Env)
	}
	for _, fs := range sets {
		for _, v := range conf.Vars(fs) {
			want[v.Env] = true
			require.True(t, strings.Contains(sec, "| `"+v.Env+"` | `--"+v.Flag+"`"),
				"section %q of docs/configuration.md must have a row | `%s` | `--%s` |", title, v.Env, v.Flag)
		}
	}
	require.NotEmpty(t, want, "no settings given")
	for _, m := range tableVar.FindAllStringSubmatch(sec, -1) {
		require.True(t, want[m[1]], "section %q documents %s, which this binary does not read", title, m[1])
	}
}
