package worker

import (
	"testing"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/stretchr/testify/require"
)

func TestWindowSizeFollowsTheDVRWindow(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		dvr     int
		segment float64
		window  int
		want    int
	}{
		"no DVR":                  {0, 2, 6, 6},
		"DVR shorter than window": {8, 2, 6, 6},
		"10 minutes of 2 s":       {600, 2, 6, 300},
		"rounded up":              {601, 2, 6, 301},
		"6 hours of 1 s":          {job.MaxDVRWindowS, 1, 6, 21600},
	} {
		t.Run(name, func(t *testing.T) {
			got := windowSize(job.Transcode{DVRWindowS: tc.dvr, SegmentDuration: tc.segment, PlaylistWindowSize: tc.window})
			require.Equal(t, tc.want, got)
		})
	}
}
