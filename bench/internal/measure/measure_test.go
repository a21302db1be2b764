package measure

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{3, 1, math.NaN(), 2, 10})
	require.Equal(t, Summary{Min: 1, Median: 2.5, Max: 10, N: 4}, s)
	require.Equal(t, "2.50 (1.00–10.00)", s.Format("%.2f"))
	require.Equal(t, "7", Summarize([]float64{7}).Format("%.0f"))
	require.False(t, Summarize(nil).Valid())
	require.Equal(t, "n/a", Summarize(nil).Format("%.0f"))
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, Percentile(ds, 0.5))
	require.Equal(t, 99*time.Millisecond, Percentile(ds, 0.99))
	require.Equal(t, 100*time.Millisecond, Percentile(ds, 1))
	require.Equal(t, time.Duration(0), Percentile(nil, 0.5))
}

// TestRunMeasuresCPU checks the child's CPU time and memory come from its
// rusage: a busy child shows CPU time, a sleeping one almost none.
func TestRunMeasuresCPU(t *testing.T) {
	busy, err := Run(context.Background(), "", nil, "sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	require.NoError(t, err)
	require.Positive(t, busy.CPU)
	require.Positive(t, busy.MaxRSSKiB)
	idle, err := Run(context.Background(), "", nil, "sleep", "0.3")
	require.NoError(t, err)
	require.GreaterOrEqual(t, idle.Wall, 300*time.Millisecond)
	require.Less(t, idle.CPU, idle.Wall/2)
	_, err = Run(context.Background(), "", nil, "sh", "-c", "echo boom >&2; exit 3")
	require.ErrorContains(t, err, "boom")
}
