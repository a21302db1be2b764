package ingest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/signature"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// received is one webhook request.
type received struct {
	id, typ string
	header  http.Header
	body    []byte
}

// A real HTTP receiver verifying signatures gets stream.live,
// session.started, session.ended and stream.idle for a real RTMP publish
// and stop, each exactly once after dedupe by event id (one is redelivered
// on purpose), in the stream's order, each validly signed; a tampered body
// fails verification.
func TestWebhookReceivesPublishAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("real edge, mediamtx and ffmpeg publishers: skipped with -short")
	}
	var (
		mu  sync.Mutex
		got []received
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{id: r.Header.Get(signature.EventIDHeader), typ: r.Header.Get(signature.EventTypeHeader),
			header: r.Header.Clone(), body: body})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	requests := func() []received {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	// deduped returns the types of the distinct events received, in arrival order.
	deduped := func() ([]string, []string) {
		var ids, types []string
		for _, r := range requests() {
			if !slices.Contains(ids, r.id) {
				ids, types = append(ids, r.id), append(types, r.typ)
			}
		}
		return ids, types
	}

	b := setup(t) // 1 s reconnect grace
	s := b.createStream("webhooked")
	var hook apiv1.WebhookWithSecret
	require.Equal(t, http.StatusCreated, b.call(http.MethodPost, "/api/v1/webhooks", apiv1.WebhookCreate{URL: rcv.URL + "/dionysia",
		EventTypes: []string{event.StreamLive, event.StreamIdle, "session.*"}, StreamID: &s.ID}, &hook))

	pub := b.publishRTMP(s.StreamKey)
	b.waitLive(s.ID, uuid.Nil, liveWithin)
	require.NoError(t, pub.Cmd.Process.Signal(syscall.SIGINT))
	_ = pub.Wait(t, time.Minute)
	b.waitIdle(s.ID, liveWithin)

	want := []string{event.SessionStarted, event.StreamLive, event.SessionEnded, event.StreamIdle}
	require.Eventually(t, func() bool { _, types := deduped(); return len(types) == len(want) }, liveWithin, 50*time.Millisecond,
		"the receiver got %v", requests())
	ids, types := deduped()
	require.Equal(t, want, types, "each once, in the stream's order")

	// A redelivered event arrives again; the receiver's dedupe keeps one.
	live := ids[1]
	var again apiv1.EventRedelivered
	require.Equal(t, http.StatusAccepted, b.call(http.MethodPost, "/api/v1/events/"+live+"/redeliver", nil, &again))
	require.Equal(t, []uuid.UUID{hook.ID}, again.WebhookIDs)
	require.Eventually(t, func() bool { return len(requests()) == len(want)+1 }, liveWithin, 50*time.Millisecond)
	_, types = deduped()
	require.Equal(t, want, types)

	for _, r := range requests() {
		h := r.header.Get(signature.Header)
		require.NoError(t, signature.Verify(h, r.body, signature.DefaultTolerance, hook.Secret), r.typ)
		tampered := []byte(strings.Replace(string(r.body), s.ID.String(), uuid.NewString(), 1))
		require.NotEqual(t, r.body, tampered, r.typ)
		require.ErrorIs(t, signature.Verify(h, tampered, signature.DefaultTolerance, hook.Secret), signature.ErrMismatch, r.typ)
		require.NotContains(t, string(r.body), s.StreamKey, "no event carries the stream key")
	}
}
