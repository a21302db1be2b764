package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// streamEvents follows a stream's events from the first one, oldest first.
func (b *ingestBundle) streamEvents(id uuid.UUID) []apiv1.Event {
	b.t.Helper()
	all := b.events("/api/v1/events?limit=200&stream_id=" + id.String())
	out := make([]apiv1.Event, len(all.Data))
	for i, e := range all.Data {
		out[len(out)-1-i] = e
	}
	return out
}

// The ingest lifecycle as the edge and the worker report it, and the events
// it records: each once, in order, without a secret.
func TestIngestLifecycleEvents(t *testing.T) {
	t.Parallel()
	// A grace no loaded machine outlasts between a drop and its reconnect.
	b := setupIngestWithGrace(t, time.Hour)
	s := b.createStream(map[string]any{"name": "lifecycle"})
	seen := 1 // stream.created
	next := func(want ...string) []apiv1.Event {
		t.Helper()
		evs := b.streamEvents(s.ID)
		require.Equal(t, want, typesOf(evs[seen:]))
		for _, e := range evs {
			require.NotContains(t, string(e.Data), s.StreamKey)
		}
		got := evs[seen:]
		seen = len(evs)
		return got
	}
	session := func(e apiv1.Event) apiv1.EventSession {
		t.Helper()
		var d apiv1.EventSession
		require.NoError(t, json.Unmarshal(e.Data, &d))
		require.Equal(t, s.ID, d.StreamID)
		return d
	}
	stream := func(e apiv1.Event) apiv1.EventStream {
		t.Helper()
		var d apiv1.EventStream
		require.NoError(t, json.Unmarshal(e.Data, &d))
		require.Equal(t, s.ID, d.ID)
		return d
	}

	// Live: session.started and stream.live, once however often the edge
	// repeats its ready.
	ev := b.ready("edge-a", s, "src-1")
	b.ready("edge-a", s, "src-1")
	got := next(event.SessionStarted, event.StreamLive)
	first := session(got[0])
	require.Equal(t, "live", first.Status)
	require.Equal(t, 1920, first.Source.Width)
	live := stream(got[1])
	require.Equal(t, "live", live.Status)
	require.Equal(t, first.ID, live.Session.ID)

	// The publisher drops: stream.disconnected, resumable for the grace.
	dropped := time.Now()
	b.notReady(ev, edgeapi.EndPublisherDisconnected)
	b.notReady(ev, edgeapi.EndPublisherDisconnected)
	got = next(event.StreamDisconnected)
	d := stream(got[0])
	require.NotNil(t, d.ResumeUntil)
	require.WithinDuration(t, dropped.Add(time.Hour), *d.ResumeUntil, time.Minute)
	require.Equal(t, first.ID, d.Session.ID)
	require.Equal(t, edgeapi.EndPublisherDisconnected, *d.Session.EndReason)

	// It comes back: the same session resumes.
	ev = b.ready("edge-a", s, "src-2")
	got = next(event.SessionResumed, event.StreamLive)
	require.Equal(t, first.ID, session(got[0]).ID)
	require.Nil(t, session(got[0]).EndedAt)

	// Worker reports: transcode.*, and stream.failover when another worker
	// starts it, with the gap from the old worker's last heartbeat.
	post := func(ev job.SessionEvent) {
		t.Helper()
		r := b.do(http.MethodPost, job.SessionEventPath(first.ID), workerSecret, ev)
		require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	}
	workers := fleet.New(b.rdb, fleet.Config{Prefix: b.prefix})
	require.NoError(t, workers.Heartbeat(context.Background(), fleet.Worker{ID: "w-1", Class: fleet.ClassCPU, Capacity: 1}))
	post(job.SessionEvent{WorkerID: "w-1", Type: job.EventStarted})
	post(job.SessionEvent{WorkerID: "w-1", Type: job.EventStarted}) // the same worker again: no failover
	beforeFailover := time.Now()
	post(job.SessionEvent{WorkerID: "w-2", Type: job.EventStarted})
	restarted := job.SessionEvent{ID: uuid.New(), WorkerID: "w-2", Type: job.EventRestarted, Reason: "decoder error"}
	post(restarted)
	post(restarted) // a retried delivery (its answer was lost): recorded once
	got = next(event.TranscodeStarted, event.TranscodeStarted, event.TranscodeStarted, event.StreamFailover, event.TranscodeRestarted)
	require.Equal(t, "w-1", *session(got[0]).WorkerID)
	require.Equal(t, "w-2", *session(got[2]).WorkerID)
	var fo apiv1.EventFailover
	require.NoError(t, json.Unmarshal(got[3].Data, &fo))
	require.Equal(t, first.ID, fo.SessionID)
	require.Equal(t, "w-1", fo.FromWorker)
	require.Equal(t, "w-2", fo.ToWorker)
	require.NotNil(t, fo.GapMs)
	require.NotNil(t, fo.FromLastSeen)
	require.GreaterOrEqual(t, *fo.GapMs, beforeFailover.Sub(*fo.FromLastSeen).Milliseconds())
	require.Equal(t, "decoder error", session(got[4]).Reason)

	// A newer publisher on another edge supersedes the session: it ends (no
	// stream.idle: the stream stays live) and a new one starts.
	ev2 := b.ready("edge-b", s, "src-3")
	got = next(event.SessionEnded, event.SessionStarted, event.StreamLive)
	require.Equal(t, first.ID, session(got[0]).ID)
	require.Equal(t, "superseded", *session(got[0]).EndReason)
	second := session(got[1])
	require.NotEqual(t, first.ID, second.ID)
	b.notReady(ev, edgeapi.EndPublisherDisconnected) // the superseded connection's late end: nothing

	// The worker gives up, then the publisher is kicked: over at once.
	r := b.do(http.MethodPost, job.SessionEventPath(second.ID), workerSecret, job.SessionEvent{WorkerID: "w-2", Type: job.EventFailed, Reason: "gave up"})
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	b.notReady(ev2, edgeapi.EndKicked)
	got = next(event.TranscodeFailed, event.SessionEnded, event.StreamIdle)
	require.Equal(t, "gave up", session(got[0]).Reason)
	ended := session(got[1])
	require.Equal(t, second.ID, ended.ID)
	require.Equal(t, edgeapi.EndKicked, *ended.EndReason)
	require.NotNil(t, ended.EndedAt)
	idle := stream(got[2])
	require.Equal(t, "idle", idle.Status)
	require.Nil(t, idle.Session)
}
