package report

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/bench/internal/measure"
)

func TestReplaceBlock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "perf.md")
	require.NoError(t, os.WriteFile(p, []byte("intro\n"+BeginMarker+"\nold\n"+EndMarker+"\noutro\n"), 0o644))
	require.NoError(t, ReplaceBlock(p, "new table\n"))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "intro\n"+BeginMarker+"\nnew table\n"+EndMarker+"\noutro\n", string(b))

	require.NoError(t, os.WriteFile(p, []byte("no markers"), 0o644))
	require.Error(t, ReplaceBlock(p, "x"))
}

func TestRatio(t *testing.T) {
	one := func(v float64) measure.Summary { return measure.Summary{Min: v, Median: v, Max: v, N: 1} }
	r := Row{Ours: one(3), Ref: one(2), LowerIsBetter: true}
	require.InDelta(t, 1.5, r.Ratio(), 1e-9)
	require.Equal(t, "1.50× (lower is better)", r.RatioText())
	require.Equal(t, "—", Row{Ours: one(3), Ref: one(0)}.RatioText())
	require.Equal(t, "—", Row{Ours: one(3)}.RatioText())
}
