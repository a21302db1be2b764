package cli_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/health"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/stretchr/testify/require"
)

// TestStreamsGetShowsHealth: an idle stream's health is unknown; a live
// one shows the worker's measurements and each warning with its message.
func TestStreamsGetShowsHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var s apiv1.Stream
	require.NoError(t, json.Unmarshal([]byte(b.ok("streams", "create", "--name", "h", "-o", "json")), &s))
	require.Regexp(t, `\nhealth\s+unknown\n`, b.ok("streams", "get", s.ID.String()))

	ctx := context.Background()
	opened, err := b.st.OpenSession(ctx, store.NewSession{StreamID: s.ID, EdgeID: "e", SourceID: "c"})
	require.NoError(t, err)
	rep := job.HealthReport{StreamID: s.ID, SessionID: opened.Session.ID, RunningS: 20, VideoSeen: true, SourceIdleS: 0.1,
		Source: job.HealthSource{FrameRate: 30, KeyframeIntervalS: 8, BitrateKbps: 2500, BitrateMeanKbps: 2400,
			Audio: job.AudioAbsent, Width: 1280, Height: 720},
		Output: job.HealthOutput{RealtimeFactor: 1, SegmentsLate: 1}}
	require.NoError(t, (&health.Recorder{Store: b.st}).Record(ctx, opened.Session.ID, rep))

	out := b.ok("streams", "get", s.ID.String())
	require.Regexp(t, `\nhealth\s+degraded \(reported `, out)
	require.Regexp(t, `\nhealth source\s+1280x720 @ 30.00 fps, keyframe every 8.0 s, 2500 kbps, B-frames no, audio absent\n`, out)
	require.Regexp(t, `\nhealth output\s+1.00× real time, 0 dropped frames, 1 late segments\n`, out)
	require.Regexp(t, `\nwarning keyframe_interval_too_long\s+the source sends a keyframe every 8.0 s; segments are 2 s long`, out)
	require.Regexp(t, `\nwarning audio_missing\s+the source sends no audio`, out)
}
