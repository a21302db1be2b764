package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/stretchr/testify/require"
)

// events returns the feed at path (GET, read key).
func (b *testBundle) events(path string) apiv1.List[apiv1.Event] {
	b.t.Helper()
	r := b.do(http.MethodGet, path, b.readKey, nil)
	require.Equal(b.t, http.StatusOK, r.status, string(r.body))
	var list apiv1.List[apiv1.Event]
	r.decode(b.t, &list)
	return list
}

func typesOf(events []apiv1.Event) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

func TestStreamChangesAreEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.createStream(map[string]any{"name": "events"})
	r := b.do(http.MethodPatch, "/api/v1/streams/"+s.ID.String(), b.adminKey, map[string]any{"name": "renamed"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	// A refused change records nothing.
	r = b.do(http.MethodPatch, "/api/v1/streams/"+s.ID.String(), b.adminKey, map[string]any{"segment_duration": 0})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	r = b.do(http.MethodPost, "/api/v1/streams/"+s.ID.String()+"/stream-key", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var rotated apiv1.Stream
	r.decode(t, &rotated)
	r = b.do(http.MethodDelete, "/api/v1/streams/"+s.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))

	list := b.events("/api/v1/events?stream_id=" + s.ID.String())
	require.Equal(t, []string{event.StreamDeleted, event.StreamUpdated, event.StreamUpdated, event.StreamCreated}, typesOf(list.Data))
	for _, e := range list.Data {
		require.Equal(t, s.ID, *e.StreamID)
		// Never a secret: neither key, nor the ingest URLs that hold it.
		raw := string(e.Data)
		require.NotContains(t, raw, s.StreamKey, e.Type)
		require.NotContains(t, raw, rotated.StreamKey, e.Type)
		require.NotContains(t, raw, `"stream_key"`, e.Type)
		require.NotContains(t, raw, `"ingest"`, e.Type)
		var data apiv1.EventStream
		require.NoError(t, json.Unmarshal(e.Data, &data))
		require.Equal(t, s.ID, data.ID)
		require.Equal(t, "https://play.example.com/live/"+s.ID.String()+"/index.m3u8", data.Playback.HLS)
	}
	var created, updated apiv1.EventStream
	require.NoError(t, json.Unmarshal(list.Data[3].Data, &created))
	require.Equal(t, "events", created.Name)
	require.NoError(t, json.Unmarshal(list.Data[2].Data, &updated))
	require.Equal(t, "renamed", updated.Name)

	// One event by id.
	r = b.do(http.MethodGet, "/api/v1/events/"+list.Data[0].ID.String(), b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var one apiv1.Event
	r.decode(t, &one)
	require.Equal(t, list.Data[0].ID, one.ID)
	require.JSONEq(t, string(list.Data[0].Data), string(one.Data))
}

func TestEventFeed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	a := b.createStream(map[string]any{"name": "a"})
	c := b.createStream(map[string]any{"name": "c"})
	for _, e := range []store.NewEvent{
		{Type: event.SessionStarted, StreamID: &a.ID}, {Type: event.StreamLive, StreamID: &a.ID},
		{Type: event.SessionStarted, StreamID: &c.ID}, {Type: event.WorkerUp}, {Type: event.SessionEnded, StreamID: &a.ID},
	} {
		e.Data = map[string]string{"n": e.Type}
		_, err := b.st.AppendEvent(ctx, e)
		require.NoError(t, err)
	}
	all := []string{event.SessionEnded, event.WorkerUp, event.SessionStarted, event.StreamLive, event.SessionStarted,
		event.StreamCreated, event.StreamCreated}
	require.Equal(t, all, typesOf(b.events("/api/v1/events").Data), "newest first")
	require.Equal(t, []string{event.SessionEnded, event.SessionStarted, event.SessionStarted},
		typesOf(b.events("/api/v1/events?type=session.").Data))
	require.Equal(t, []string{event.SessionEnded, event.SessionStarted},
		typesOf(b.events("/api/v1/events?type=session.&stream_id="+a.ID.String()).Data))
	require.Equal(t, []string{event.StreamLive}, typesOf(b.events("/api/v1/events?type=stream.live").Data))
	require.Empty(t, b.events("/api/v1/events?type=recording.").Data)

	// Pages, newest first.
	var got []string
	path := "/api/v1/events?limit=3"
	for {
		page := b.events(path)
		got = append(got, typesOf(page.Data)...)
		if page.NextCursor == nil {
			break
		}
		path = "/api/v1/events?limit=3&cursor=" + *page.NextCursor
	}
	require.Equal(t, all, got)

	// Following: after an event, oldest first, until caught up.
	newest := b.events("/api/v1/events")
	oldest := newest.Data[len(newest.Data)-1]
	// A follower sees an event once the transactions that began before it
	// ended (other tests' too, in this database): wait until all have.
	require.Eventually(t, func() bool {
		return len(b.events("/api/v1/events?after="+oldest.ID.String()).Data) == len(all)-1
	}, 30*time.Second, 20*time.Millisecond)
	follow := b.events("/api/v1/events?limit=2&after=" + oldest.ID.String())
	require.Nil(t, follow.NextCursor)
	require.Equal(t, []string{event.StreamCreated, event.SessionStarted}, typesOf(follow.Data))
	follow = b.events("/api/v1/events?after=" + follow.Data[1].ID.String())
	require.Equal(t, []string{event.StreamLive, event.SessionStarted, event.WorkerUp, event.SessionEnded}, typesOf(follow.Data))
	require.Empty(t, b.events("/api/v1/events?after="+follow.Data[3].ID.String()).Data, "caught up")
	follow = b.events("/api/v1/events?type=session.&stream_id=" + a.ID.String() + "&after=" + oldest.ID.String())
	require.Equal(t, []string{event.SessionStarted, event.SessionEnded}, typesOf(follow.Data))

	for _, tc := range []struct{ query, field string }{
		{"type=Session.", "type"},
		{"type=session%25", "type"},
		{"type=" + strings.Repeat("a", 101), "type"},
		{"stream_id=nope", "stream_id"},
		{"after=nope", "after"},
		{"after=" + a.ID.String(), "after"}, // a stream's id, no event's
		{"after=" + oldest.ID.String() + "&cursor=" + *b.events("/api/v1/events?limit=1").NextCursor, "after"},
		{"limit=0", "limit"},
		{"cursor=***", "cursor"},
	} {
		r := b.do(http.MethodGet, "/api/v1/events?"+tc.query, b.readKey, nil)
		require.Equal(t, http.StatusBadRequest, r.status, tc.query)
		require.Equal(t, []string{tc.field}, fieldsOf(r.problem(t)), tc.query)
	}
	for _, id := range []string{"nope", a.ID.String()} {
		r := b.do(http.MethodGet, "/api/v1/events/"+id, b.readKey, nil)
		require.Equal(t, http.StatusNotFound, r.status)
		require.Contains(t, r.problem(t).Detail, "no event with id")
	}
	r := b.do(http.MethodGet, "/api/v1/events", "", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
}

func TestEventPruner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for range 5 {
		_, err := b.st.AppendEvent(ctx, store.NewEvent{Type: event.WorkerUp, Data: struct{}{}})
		require.NoError(t, err)
	}
	logger, logs := testkit.Logger(t)
	// A retention of an hour keeps them; of zero, prunes them all, two a batch.
	keep := &api.EventPruner{Store: b.st, Retention: time.Hour, Batch: 2, Logger: logger}
	require.Zero(t, keep.PruneOnce(ctx))
	require.Len(t, b.events("/api/v1/events").Data, 5)
	prune := &api.EventPruner{Store: b.st, Retention: 0, Batch: 2, Logger: logger}
	require.Equal(t, int64(5), prune.PruneOnce(ctx))
	require.Empty(t, b.events("/api/v1/events").Data)
	require.Contains(t, logs.String(), "pruned the event log")
	require.Zero(t, prune.PruneOnce(ctx))

	// Run prunes at once, then on its interval, until cancelled.
	_, err := b.st.AppendEvent(ctx, store.NewEvent{Type: event.WorkerUp, Data: struct{}{}})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- (&api.EventPruner{Store: b.st, Retention: 0, Interval: 10 * time.Millisecond}).Run(rctx)
	}()
	require.Eventually(t, func() bool { return len(b.events("/api/v1/events").Data) == 0 }, 30*time.Second, 20*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestWorkerEventsOncePerTransition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	w := func(id string, state fleet.State) fleet.WorkerStatus {
		return fleet.WorkerStatus{Worker: fleet.Worker{ID: id, Host: "h", Class: fleet.ClassCPU, Capacity: 2, StartedAt: now, LastSeen: now},
			State: state}
	}
	// Two API replicas watch the same fleet.
	replicas := []*api.WorkerEvents{{Store: b.st}, {Store: b.st}}
	observe := func(ws ...fleet.WorkerStatus) {
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(func() { r.Observe(ctx, ws) })
		}
		wg.Wait()
	}
	observe(w("w1", fleet.StateUp), w("w2", fleet.StateLagging))
	observe(w("w1", fleet.StateUp), w("w2", fleet.StateUp))
	observe(w("w1", fleet.StateUp), w("w2", fleet.StateGone))
	observe(w("w1", fleet.StateUp)) // w2 no longer listed: still lost once
	observe()                       // w1 gone from the listing altogether
	observe(w("w2", fleet.StateUp))

	list := b.events("/api/v1/events?type=worker.")
	var got []string
	for i := len(list.Data) - 1; i >= 0; i-- {
		e := list.Data[i]
		require.Nil(t, e.StreamID)
		var data apiv1.EventWorker
		require.NoError(t, json.Unmarshal(e.Data, &data))
		got = append(got, e.Type+" "+data.ID)
		if e.Type == event.WorkerLost {
			require.NotNil(t, data.LostAt)
			require.Equal(t, "gone", data.State)
		}
	}
	require.ElementsMatch(t, []string{"worker.up w1", "worker.up w2"}, got[:2])
	require.Equal(t, []string{"worker.lost w2", "worker.lost w1", "worker.up w2"}, got[2:])
}
