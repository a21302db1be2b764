package api_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestRecordingHistory(t *testing.T) {
	t.Parallel()
	b := setupIngestBackground(t, 2*time.Second, true)
	s := b.createStream(map[string]any{"name": "rec", "hardware": "cpu", "recording": map[string]any{"mode": "automatic"},
		"dvr_window_s": 600})
	b.ready("edge-a", s, "src-1")
	sess := b.getStream(s.ID).Session
	a := b.assetsOf(s.ID)[0]
	w := b.acquire("worker-a", s.ID, sess.ID, a.ID)
	prefix := job.AssetPrefix(a.ID)
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)

	// Run 0: segments 1-10; run 1 (the pipeline restarted): 20-21, later.
	var objs []job.RecordedObject
	add := func(run int, from, n int, start time.Time) {
		for _, rend := range []string{"audio", "720p"} {
			init := fmt.Sprintf("%s%s/init-%d-%d.mp4", prefix, rend, w.lease.Token, run)
			track := &job.RecordedTrack{Codec: "avc1.64001f", Timescale: 90000, Width: 1280, Height: 720}
			if rend == "audio" {
				track = &job.RecordedTrack{Audio: true, Codec: "mp4a.40.2", Timescale: 48000, SampleRate: 48000, Channels: 2}
			}
			objs = append(objs, job.RecordedObject{Kind: job.ObjectInit, Rendition: rend, Key: init, Size: 4, Run: run, Track: track})
			for i := range n {
				num := from + i
				objs = append(objs, job.RecordedObject{Kind: job.ObjectSegment, Rendition: rend, Run: run, Size: 7,
					Key: fmt.Sprintf("%s%s/%d-%d.m4s", prefix, rend, w.lease.Token, num), Number: uint64(num), Init: init,
					Start: start.Add(time.Duration(2*i) * time.Second), DurationS: 2, MediaStart: uint64(i) * 2 * uint64(track.Timescale)})
			}
		}
	}
	add(0, 1, 10, t0)
	add(1, 20, 2, t0.Add(25*time.Second))
	r := w.report(objs, false)
	require.Equal(t, http.StatusOK, r.status, string(r.body))

	history := func(window int) job.RecordingHistory {
		t.Helper()
		r := b.do(http.MethodGet, fmt.Sprintf("%s?window_s=%d", job.RecordingPath(sess.ID), window), workerSecret, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var h job.RecordingHistory
		r.decode(t, &h)
		return h
	}
	// The newest segment ends at t0+29 s: a 10 s window takes segments
	// ending after t0+19 s.
	h := history(10)
	require.Equal(t, a.ID, h.AssetID)
	require.Len(t, h.Runs, 2, "oldest run first")
	numbers := func(tr job.RecordedRunTrack) []uint64 {
		var out []uint64
		for _, s := range tr.Segments {
			out = append(out, s.Number)
		}
		return out
	}
	for i, want := range [][]uint64{{10}, {20, 21}} {
		run := h.Runs[i]
		require.Len(t, run.Tracks, 2)
		require.Equal(t, "720p", run.Tracks[0].Rendition, "video first")
		require.Equal(t, "audio", run.Tracks[1].Rendition)
		require.True(t, run.Tracks[1].Track.Audio)
		require.Equal(t, fmt.Sprintf("%s720p/init-%d-%d.mp4", prefix, w.lease.Token, i), run.Tracks[0].InitKey)
		for _, tr := range run.Tracks {
			require.Equal(t, want, numbers(tr), "run %d %s", i, tr.Rendition)
		}
	}
	seg := h.Runs[1].Tracks[1].Segments[1]
	require.Equal(t, fmt.Sprintf("%saudio/%d-21.m4s", prefix, w.lease.Token), seg.Key)
	require.Equal(t, uint64(96000), seg.MediaStart)
	require.Equal(t, 2.0, seg.DurationS)
	require.True(t, t0.Add(27*time.Second).Equal(seg.Start))
	require.Len(t, history(600).Runs[0].Tracks[0].Segments, 10, "a long window takes everything")

	for _, q := range []string{"", "?window_s=0", "?window_s=21601", "?window_s=ten"} {
		r := b.do(http.MethodGet, job.RecordingPath(sess.ID)+q, workerSecret, nil)
		require.Equal(t, http.StatusBadRequest, r.status, q)
		require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		require.Contains(t, string(r.body), "window_s")
	}
	r = b.do(http.MethodGet, job.RecordingPath(uuid.New())+"?window_s=10", workerSecret, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = b.do(http.MethodGet, job.RecordingPath(sess.ID)+"?window_s=10", "wrong", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
}
