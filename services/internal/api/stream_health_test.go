package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestStreamHealthEndpoints: a worker's report (with the worker secret)
// shows as the stream's health in get and list, answers match openapi.json,
// and bad reports are refused with a problem naming what is wrong.
func TestStreamHealthEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, bundleOpts{workerSecret: "w-secret"})
	s := b.createStream(map[string]any{"name": "health"})
	require.Equal(t, apiv1.HealthUnknown, s.Health.Status)
	require.Nil(t, s.Health.UpdatedAt)
	opened, err := b.st.OpenSession(context.Background(), store.NewSession{StreamID: s.ID, EdgeID: "e", SourceID: "c"})
	require.NoError(t, err)
	sess := opened.Session.ID

	rep := job.HealthReport{StreamID: s.ID, SessionID: sess, WorkerID: "w1", RunningS: 20, VideoSeen: true, SourceIdleS: 0.05,
		Source: job.HealthSource{FrameRate: 29.97, KeyframeIntervalS: 8, BitrateKbps: 2500, BitrateMeanKbps: 2400, BFrames: true,
			Audio: job.AudioAbsent, Width: 1280, Height: 720},
		Output: job.HealthOutput{RealtimeFactor: 0.99}}
	post := func(key string, id uuid.UUID, body any) response {
		return b.do(http.MethodPost, job.HealthPath(id), key, body)
	}
	r := post("w-secret", sess, rep)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))

	var got apiv1.Stream
	r = b.do(http.MethodGet, "/api/v1/streams/"+s.ID.String(), b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	r.decode(t, &got)
	h := got.Health
	require.Equal(t, apiv1.HealthDegraded, h.Status)
	require.Equal(t, apiv1.HealthSource{FrameRate: 29.97, KeyframeIntervalS: 8, BitrateKbps: 2500, BFrames: true,
		Audio: job.AudioAbsent, Width: 1280, Height: 720}, h.Source)
	require.Len(t, h.Warnings, 2)
	require.Equal(t, "keyframe_interval_too_long", h.Warnings[0].Code)
	require.Equal(t, "audio_missing", h.Warnings[1].Code)
	require.NotNil(t, h.UpdatedAt)
	require.InDelta(t, 29.97, got.Session.Source.FrameRate, 0.001, "the session keeps the measured frame rate")

	var list apiv1.List[apiv1.Stream]
	r = b.do(http.MethodGet, "/api/v1/streams", b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	r.decode(t, &list)
	require.Equal(t, apiv1.HealthDegraded, list.Data[0].Health.Status)

	metrics := b.do(http.MethodGet, "/metrics", "", nil)
	require.Contains(t, string(metrics.body), `dionysia_stream_health{status="degraded",stream_id="`+s.ID.String()+`"} 1`)

	// Refusals.
	require.Equal(t, http.StatusUnauthorized, post("wrong", sess, rep).status)
	other := rep
	other.SessionID = uuid.Must(uuid.NewV7())
	p := post("w-secret", sess, other)
	require.Equal(t, http.StatusBadRequest, p.status)
	require.Contains(t, p.problem(t).Detail, "session_id")
	unknown := uuid.Must(uuid.NewV7())
	rep.SessionID = unknown
	p = post("w-secret", unknown, rep)
	require.Equal(t, http.StatusNotFound, p.status)
	require.True(t, strings.HasPrefix(p.problem(t).Detail, "no session with id"))
}
