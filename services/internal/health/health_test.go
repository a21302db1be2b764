package health_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/health"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// good is a report of a steady source with nothing to change.
func good() job.HealthReport {
	return job.HealthReport{RunningS: 30, VideoSeen: true, SourceIdleS: 0.03,
		Source: job.HealthSource{FrameRate: 30, FrameRateJitter: 0.02, KeyframeIntervalS: 2, BitrateKbps: 2500, BitrateMeanKbps: 2400,
			BFrames: true, Audio: job.AudioPresent, Width: 1280, Height: 720},
		Output: job.HealthOutput{RealtimeFactor: 1.01}}
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	with := func(f func(r *job.HealthReport)) *job.HealthReport {
		r := good()
		f(&r)
		return &r
	}
	for _, tc := range []struct {
		name     string
		report   *job.HealthReport
		age      time.Duration // of the report
		idle     bool          // the stream is not live
		segment  int
		status   string
		codes    []string
		contains string // in the first warning's message
	}{
		{name: "no report yet", status: apiv1.HealthUnknown},
		{name: "healthy", report: with(func(*job.HealthReport) {}), status: apiv1.HealthHealthy},
		{name: "stale", report: with(func(*job.HealthReport) {}), age: 16 * time.Second, status: apiv1.HealthUnknown},
		{name: "idle stream", report: with(func(*job.HealthReport) {}), idle: true, status: apiv1.HealthUnknown},
		{name: "starting, nothing measured", report: &job.HealthReport{RunningS: 0.5, SourceIdleS: -1}, status: apiv1.HealthUnknown},
		{name: "first video, not measured yet", report: with(func(r *job.HealthReport) {
			r.Source = job.HealthSource{Width: 640, Height: 360}
		}), status: apiv1.HealthUnknown},
		{name: "8 s keyframes with 2 s segments", report: with(func(r *job.HealthReport) { r.Source.KeyframeIntervalS = 8 }),
			status: apiv1.HealthDegraded, codes: []string{health.CodeKeyframeTooLong},
			contains: "the source sends a keyframe every 8.0 s; segments are 2 s long and latency grows"},
		{name: "8 s keyframes with 8 s segments are fine", report: with(func(r *job.HealthReport) { r.Source.KeyframeIntervalS = 8 }),
			segment: 8, status: apiv1.HealthHealthy},
		{name: "overdue keyframe", report: with(func(r *job.HealthReport) {
			r.Source.KeyframeIntervalS, r.Source.KeyframeIntervalAtLeast = 5.5, true
		}), status: apiv1.HealthDegraded, codes: []string{health.CodeKeyframeTooLong}, contains: "no keyframe for 5.5 s"},
		{name: "2.04 s keyframes are rounding", report: with(func(r *job.HealthReport) { r.Source.KeyframeIntervalS = 2.04 }),
			status: apiv1.HealthHealthy},
		{name: "no audio", report: with(func(r *job.HealthReport) { r.Source.Audio = job.AudioAbsent }),
			status: apiv1.HealthDegraded, codes: []string{health.CodeAudioMissing}, contains: "enable an audio track"},
		{name: "audio not known yet", report: with(func(r *job.HealthReport) { r.Source.Audio = "" }), status: apiv1.HealthHealthy},
		{name: "unstable frame rate", report: with(func(r *job.HealthReport) { r.Source.FrameRateJitter = 0.6 }),
			status: apiv1.HealthDegraded, codes: []string{health.CodeFrameRateUnstable}, contains: "vary by 60%"},
		{name: "bitrate drop", report: with(func(r *job.HealthReport) { r.Source.BitrateKbps = 1000 }),
			status: apiv1.HealthDegraded, codes: []string{health.CodeBitrateDrop}, contains: "fell to 1000 kbps, below half its 1-minute mean of 2400 kbps"},
		{name: "slow worker", report: with(func(r *job.HealthReport) { r.Output.RealtimeFactor = 0.8 }),
			status: apiv1.HealthDegraded, codes: []string{health.CodeSlowerThanRealtime},
			contains: "the worker encodes at 0.8× real time and falls behind: choose a lighter profile or a GPU worker"},
		{name: "slow at the start is catching up", report: with(func(r *job.HealthReport) {
			r.Output.RealtimeFactor, r.RunningS = 0.8, 3
		}), status: apiv1.HealthHealthy},
		{name: "stalled source", report: with(func(r *job.HealthReport) {
			r.SourceIdleS, r.Source.BitrateKbps, r.Output.RealtimeFactor, r.Source.FrameRateJitter = 3.2, 0, 0.5, 0.9
		}), status: apiv1.HealthStarving, codes: []string{health.CodeSourceStalled}, contains: "sent nothing for 3.2 s"},
		{name: "just after a stall the bitrate is not judged", report: with(func(r *job.HealthReport) {
			r.SourceResumedS, r.Source.BitrateKbps = 1.5, 0
		}), status: apiv1.HealthHealthy},
		{name: "a drop well after a stall is", report: with(func(r *job.HealthReport) {
			r.SourceResumedS, r.Source.BitrateKbps = 30, 300
		}), status: apiv1.HealthDegraded, codes: []string{health.CodeBitrateDrop}},
		{name: "a long wait for the first keyframe is a long interval", report: with(func(r *job.HealthReport) {
			r.Source.KeyframeIntervalS, r.FirstVideoAfterS = 0, 7.6
		}), status: apiv1.HealthDegraded, codes: []string{health.CodeKeyframeTooLong},
			contains: "the worker waited 7.6 s for the source's first keyframe, so it sends one every 6.1 s or more; segments are 2 s long"},
		{name: "a short wait is a join", report: with(func(r *job.HealthReport) {
			r.Source.KeyframeIntervalS, r.FirstVideoAfterS = 0, 3.4
		}), status: apiv1.HealthHealthy},
		{name: "still waiting long", report: &job.HealthReport{RunningS: 6, SourceIdleS: -1}, status: apiv1.HealthDegraded,
			codes: []string{health.CodeWaitingForKeyframe, health.CodeKeyframeTooLong}},
		{name: "just under 2 s is not starving", report: with(func(r *job.HealthReport) { r.SourceIdleS = 1.9 }), status: apiv1.HealthHealthy},
		{name: "a stall starting is no bitrate drop or missing audio", report: with(func(r *job.HealthReport) {
			r.SourceIdleS, r.Source.BitrateKbps, r.Source.Audio = 1.2, 300, job.AudioAbsent
		}), status: apiv1.HealthHealthy},
		{name: "a stall is no missing audio", report: with(func(r *job.HealthReport) {
			r.SourceIdleS, r.Source.Audio = 2.5, job.AudioAbsent
		}), status: apiv1.HealthStarving, codes: []string{health.CodeSourceStalled}},
		{name: "no video yet, as a 2 s source may", report: &job.HealthReport{RunningS: 3, SourceIdleS: -1},
			status: apiv1.HealthUnknown},
		{name: "audio but no keyframe yet, longer than a 2 s source takes", report: &job.HealthReport{RunningS: 4, SourceIdleS: 0.02,
			Source: job.HealthSource{Audio: job.AudioPresent}}, status: apiv1.HealthDegraded,
			codes:    []string{health.CodeWaitingForKeyframe, health.CodeKeyframeTooLong},
			contains: "received no video in 4.0 s: it waits for the source's first keyframe"},
		{name: "several", report: with(func(r *job.HealthReport) {
			r.Source.KeyframeIntervalS, r.Source.Audio = 10, job.AudioAbsent
		}), status: apiv1.HealthDegraded, codes: []string{health.CodeKeyframeTooLong, health.CodeAudioMissing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := health.Evaluate(health.Input{Report: tc.report, ReceivedAt: now.Add(-tc.age), Now: now, Live: !tc.idle,
				SegmentDurationS: tc.segment})
			require.Equal(t, tc.status, h.Status)
			codes := []string{}
			for _, w := range h.Warnings {
				codes = append(codes, w.Code)
				require.NotEmpty(t, w.Message)
			}
			if tc.codes == nil {
				tc.codes = []string{}
			}
			require.Equal(t, tc.codes, codes)
			require.NotNil(t, h.Warnings, "warnings is a list, never null")
			if tc.contains != "" {
				require.Contains(t, h.Warnings[0].Message, tc.contains)
			}
			if tc.report == nil {
				require.Nil(t, h.UpdatedAt)
			} else {
				require.Equal(t, now.Add(-tc.age), *h.UpdatedAt)
				require.Equal(t, tc.report.Source.Width, h.Source.Width)
			}
		})
	}
}

func TestStatusAt(t *testing.T) {
	now := time.Now()
	require.Equal(t, apiv1.HealthUnknown, health.StatusAt("", time.Time{}, now))
	require.Equal(t, apiv1.HealthStarving, health.StatusAt(apiv1.HealthStarving, now.Add(-time.Second), now))
	require.Equal(t, apiv1.HealthUnknown, health.StatusAt(apiv1.HealthHealthy, now.Add(-16*time.Second), now))
}

// TestRecorder: reports are stored on the session (and its source), and a
// change of status records one stream.health_changed event with the
// report, in the same transaction.
func TestRecorder(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := store.New(dbtest.New(t))
	p, err := st.GetProfileByName(ctx, ladder.Builtin720p)
	require.NoError(t, err)
	s, err := st.CreateStream(ctx, store.NewStream{Name: "h", ProfileID: p.ID})
	require.NoError(t, err)
	opened, err := st.OpenSession(ctx, store.NewSession{StreamID: s.ID, EdgeID: "e", SourceID: "c",
		Source: store.SourceFromMedia("rtmp", edgeapi.Media{VideoCodec: "H264", Width: 1280, Height: 720})})
	require.NoError(t, err)
	sess := opened.Session
	rec := &health.Recorder{Store: st}

	events := func() []store.Event {
		evs, _, err := st.ListEvents(ctx, store.EventFilter{TypePrefix: event.StreamHealthChanged, StreamID: &s.ID}, store.Page{Limit: 100})
		require.NoError(t, err)
		return evs
	}
	report := good()
	report.StreamID, report.SessionID = s.ID, sess.ID
	require.NoError(t, rec.Record(ctx, sess.ID, report))
	require.NoError(t, rec.Record(ctx, sess.ID, report)) // same status: no event
	stalled := report
	stalled.SourceIdleS = 4
	require.NoError(t, rec.Record(ctx, sess.ID, stalled))
	require.NoError(t, rec.Record(ctx, sess.ID, report))

	evs := events()
	require.Len(t, evs, 3) // unknown→healthy, healthy→starving, starving→healthy (newest first)
	var changes []string
	for i := len(evs) - 1; i >= 0; i-- {
		var c health.Changed
		require.NoError(t, json.Unmarshal(evs[i].Data, &c))
		require.Equal(t, s.ID, c.StreamID)
		require.Equal(t, sess.ID, c.SessionID)
		require.Equal(t, c.Status, c.Health.Status)
		changes = append(changes, c.Previous+"→"+c.Status)
	}
	require.Equal(t, []string{"unknown→healthy", "healthy→starving", "starving→healthy"}, changes)
	require.NotContains(t, string(evs[0].Data), s.StreamKey, "no secret in an event")

	got, err := st.GetSession(ctx, sess.ID)
	require.NoError(t, err)
	require.Equal(t, apiv1.HealthHealthy, got.Health.Status)
	require.Equal(t, report, *got.Health.Report)
	require.InDelta(t, 30, *got.Source.FrameRate, 0.01, "the session keeps the measured frame rate")
	require.Equal(t, 2500, *got.Source.BitrateKbps)

	col := health.NewCollector(st, nil)
	require.Equal(t, 4, testutil.CollectAndCount(col, "dionysia_stream_health"))
	want := "# HELP dionysia_stream_health Health status of each live stream: 1 for its current status (healthy, degraded, starving, unknown), 0 for the others.\n" +
		"# TYPE dionysia_stream_health gauge\n"
	for _, status := range health.Statuses {
		v := "0"
		if status == apiv1.HealthHealthy {
			v = "1"
		}
		want += `dionysia_stream_health{status="` + status + `",stream_id="` + s.ID.String() + `"} ` + v + "\n"
	}
	require.NoError(t, testutil.CollectAndCompare(col, strings.NewReader(want), "dionysia_stream_health"))

	// An unknown session is ErrNotFound; a closed one is left alone.
	require.ErrorIs(t, rec.Record(ctx, uuid.Must(uuid.NewV7()), report), store.ErrNotFound)
}
