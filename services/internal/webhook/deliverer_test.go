package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/signature"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/dionysia/dionysia/services/internal/webhook"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// wait is the deadline of every wait for a condition: generous, for a
// loaded machine.
const wait = 90 * time.Second

// received is one request the receiver got.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
	status int
}

// receiver is a real HTTP server standing for an operator's endpoint.
// answer decides each answer (n counts the requests so far, from 1).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(w http.ResponseWriter, r *http.Request, n int) int
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	if rc.answer == nil {
		rc.answer = func(http.ResponseWriter, *http.Request, int) int { return http.StatusNoContent }
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got) + 1
		rc.got = append(rc.got, received{at: time.Now(), header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		status := rc.answer(w, r, n)
		rc.mu.Lock()
		rc.got[n-1].status = status
		rc.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// delivered returns the event ids answered 2xx, in arrival order, once each
// (the receiver's dedupe by Dionysia-Event-Id).
func (rc *receiver) delivered() []string {
	var out []string
	for _, r := range rc.requests() {
		id := r.header.Get(signature.EventIDHeader)
		if r.status >= 200 && r.status < 300 && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

type testBundle struct {
	t    *testing.T
	ctx  context.Context
	st   *store.Store
	logs *testkit.LogBuffer
}

// setup starts a Deliverer on a fresh schema. Private targets are allowed
// unless the config says otherwise through forbidPrivate.
func setup(t *testing.T, cfg webhook.Config) *testBundle {
	t.Helper()
	pool := dbtest.New(t)
	st := store.New(pool)
	log, logs := testkit.Logger(t)
	cfg.Logger = log
	d, err := webhook.New(st, pool, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(tcancel)
	return &testBundle{t: t, ctx: tctx, st: st, logs: logs}
}

// fast are short retry settings for tests.
func fast() config.Webhooks {
	return config.Webhooks{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second, PollInterval: 50 * time.Millisecond}
}

func (b *testBundle) webhook(url string, n store.NewWebhook) store.Webhook {
	b.t.Helper()
	n.URL, n.Enabled = url, true
	w, err := b.st.CreateWebhook(b.ctx, n)
	require.NoError(b.t, err)
	return w
}

func (b *testBundle) append(typ string, streamID *uuid.UUID, data any) store.Event {
	b.t.Helper()
	ev, err := b.st.AppendEvent(b.ctx, store.NewEvent{Type: typ, StreamID: streamID, Data: data})
	require.NoError(b.t, err)
	return ev
}

func (b *testBundle) deliveries(w store.Webhook) []store.Delivery {
	b.t.Helper()
	ds, _, err := b.st.ListDeliveries(b.ctx, w.ID, store.Page{Limit: 200})
	require.NoError(b.t, err)
	return ds
}

// waitDeliveries waits until every delivery of w has left pending and
// returns them, oldest first.
func (b *testBundle) waitDeliveries(w store.Webhook, n int, status string) []store.Delivery {
	b.t.Helper()
	var ds []store.Delivery
	require.Eventually(b.t, func() bool {
		ds = b.deliveries(w)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.Status != status {
				return false
			}
		}
		return true
	}, wait, 20*time.Millisecond, "waiting for %d %s deliveries", n, status)
	slices.Reverse(ds)
	return ds
}

func ptr[T any](v T) *T { return &v }

func TestDeliversSignedEvents(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	b := setup(t, webhook.Config{Webhooks: fast(), AllowPrivateTargets: true})
	w := b.webhook(rc.srv.URL+"/hook?token=abc", store.NewWebhook{EventTypes: []string{"stream.*"}})
	sid := uuid.New()
	live := b.append(event.StreamLive, &sid, map[string]any{"id": sid, "status": "live"})
	b.append(event.SessionStarted, &sid, map[string]any{}) // not subscribed
	idle := b.append(event.StreamIdle, &sid, map[string]any{"id": sid, "status": "idle"})

	ds := b.waitDeliveries(w, 2, store.DeliveryDelivered)
	require.Equal(t, []string{live.ID.String(), idle.ID.String()}, rc.delivered())
	for i, r := range rc.requests() {
		require.NoError(t, signature.Verify(r.header.Get(signature.Header), r.body, signature.DefaultTolerance, w.Secret), "request %d", i)
		require.Equal(t, webhook.UserAgent, r.header.Get("User-Agent"))
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		var p apiv1.WebhookPayload
		require.NoError(t, json.Unmarshal(r.body, &p))
		require.Equal(t, r.header.Get(signature.EventIDHeader), p.ID.String())
		require.Equal(t, r.header.Get(signature.EventTypeHeader), p.Type)
		require.Equal(t, &sid, p.StreamID)
		require.False(t, p.CreatedAt.IsZero())

		// A tampered body does not verify, nor does another secret.
		tampered := []byte(strings.Replace(string(r.body), `"status":"`, `"status":"x`, 1))
		require.NotEqual(t, r.body, tampered)
		require.ErrorIs(t, signature.Verify(r.header.Get(signature.Header), tampered, signature.DefaultTolerance, w.Secret), signature.ErrMismatch)
		require.ErrorIs(t, signature.Verify(r.header.Get(signature.Header), r.body, signature.DefaultTolerance, "whsec_other"), signature.ErrMismatch)
	}
	var p apiv1.WebhookPayload
	require.NoError(t, json.Unmarshal(rc.requests()[0].body, &p))
	require.JSONEq(t, `{"id":"`+sid.String()+`","status":"live"}`, string(p.Data))

	for _, d := range ds {
		require.Equal(t, 1, d.Attempts)
		require.Equal(t, 204, *d.LastStatusCode)
		require.Nil(t, d.NextAttemptAt)
		require.NotNil(t, d.DeliveredAt)
		require.Len(t, d.AttemptLog, 1)
		require.Nil(t, d.AttemptLog[0].Error)
	}
	require.NotContains(t, b.logs.String(), w.Secret)
}

// The acceptance case: the receiver answers 500 for 30 s, then 200. Every
// event arrives, once each after dedupe, in order, and the deliveries list
// every attempt with its status code and growing delays.
func TestRetriesUntilTheReceiverRecovers(t *testing.T) {
	t.Parallel()
	const down = 30 * time.Second
	var (
		mu    sync.Mutex
		first time.Time
	)
	rc := newReceiver(t, func(_ http.ResponseWriter, _ *http.Request, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) < down {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	cfg := config.Webhooks{BackoffBase: 500 * time.Millisecond, BackoffMax: 8 * time.Second, PollInterval: 50 * time.Millisecond}
	b := setup(t, webhook.Config{Webhooks: cfg, AllowPrivateTargets: true})
	w := b.webhook(rc.srv.URL, store.NewWebhook{})
	sid := uuid.New()
	var want []string
	for i := range 3 {
		want = append(want, b.append(event.StreamUpdated, &sid, map[string]int{"n": i}).ID.String())
	}
	other := b.append(event.WorkerUp, nil, map[string]string{"id": "w1"}) // no stream: not held behind the others

	ds := b.waitDeliveries(w, 4, store.DeliveryDelivered)
	hook, err := b.st.GetWebhook(b.ctx, w.ID)
	require.NoError(t, err)
	require.Zero(t, hook.ConsecutiveFailedAttempts, "a successful attempt resets the count")
	got := rc.delivered()
	require.ElementsMatch(t, append(slices.Clone(want), other.ID.String()), got)
	var streamOrder []string
	for _, id := range got {
		if slices.Contains(want, id) {
			streamOrder = append(streamOrder, id)
		}
	}
	require.Equal(t, want, streamOrder, "one stream's events arrive in order")

	head := ds[0]
	require.Equal(t, want[0], head.EventID.String())
	require.Greater(t, head.Attempts, 3)
	require.Len(t, head.AttemptLog, head.Attempts)
	var delays []time.Duration
	for i, a := range head.AttemptLog {
		last := i == len(head.AttemptLog)-1
		if last {
			require.Equal(t, 200, *a.StatusCode)
			require.Nil(t, a.Error)
		} else {
			require.Equal(t, 500, *a.StatusCode)
			require.Equal(t, "HTTP 500", *a.Error)
		}
		if i > 0 {
			d := a.AttemptedAt.Sub(head.AttemptLog[i-1].AttemptedAt)
			delays = append(delays, d)
			// Attempt i waited Backoff(i): between half of and the whole
			// bound (500 ms doubling, capped at 8 s), plus the poll and
			// the request.
			bound := min(cfg.BackoffBase<<(i-1), cfg.BackoffMax)
			require.GreaterOrEqual(t, d, bound/2, "delay before attempt %d", i+1)
			require.Less(t, d, bound+2*time.Second, "delay before attempt %d", i+1)
		}
	}
	require.Greater(t, delays[len(delays)-1], 4*delays[0], "the delays grow")
	require.GreaterOrEqual(t, head.AttemptLog[len(head.AttemptLog)-1].AttemptedAt.Sub(head.AttemptLog[0].AttemptedAt), down)
	t.Logf("first delivery: %d attempts; delays between them: %v", head.Attempts, delays)
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) int {
		if r.URL.Path == "/elsewhere" {
			return http.StatusOK
		}
		w.Header().Set("Location", "/elsewhere")
		return http.StatusFound
	})
	b := setup(t, webhook.Config{Webhooks: fast(), AllowPrivateTargets: true})
	w := b.webhook(rc.srv.URL+"/hook", store.NewWebhook{})
	b.append(event.WorkerUp, nil, map[string]string{})
	require.Eventually(t, func() bool {
		ds := b.deliveries(w)
		return len(ds) == 1 && len(ds[0].AttemptLog) >= 2
	}, wait, 20*time.Millisecond)
	d := b.deliveries(w)[0]
	require.Equal(t, store.DeliveryPending, d.Status)
	require.Equal(t, 302, *d.AttemptLog[0].StatusCode)
	require.Contains(t, *d.AttemptLog[0].Error, "redirects are not followed")
	got, err := b.st.GetWebhook(b.ctx, w.ID)
	require.NoError(t, err)
	require.GreaterOrEqual(t, got.ConsecutiveFailedAttempts, 2, "failed attempts count before any delivery fails for good")
	require.Zero(t, got.ConsecutiveFailures)
	for _, r := range rc.requests() {
		require.NotEqual(t, http.StatusOK, r.status, "the redirect target was requested")
	}
}

func TestRequestsTimeOut(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) int {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return http.StatusOK
	})
	cfg := fast()
	cfg.Timeout = 300 * time.Millisecond
	b := setup(t, webhook.Config{Webhooks: cfg, AllowPrivateTargets: true})
	w := b.webhook(rc.srv.URL, store.NewWebhook{})
	b.append(event.WorkerUp, nil, map[string]string{})
	require.Eventually(t, func() bool {
		ds := b.deliveries(w)
		return len(ds) == 1 && len(ds[0].AttemptLog) >= 1
	}, wait, 20*time.Millisecond)
	a := b.deliveries(w)[0].AttemptLog[0]
	require.Nil(t, a.StatusCode)
	require.Equal(t, "no answer within 300ms", *a.Error)
	require.GreaterOrEqual(t, a.Latency, 300*time.Millisecond)
}

func TestEndpointDisabledAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(http.ResponseWriter, *http.Request, int) int { return http.StatusServiceUnavailable })
	cfg := fast()
	cfg.RetryFor, cfg.DisableAfter = time.Second, 3
	b := setup(t, webhook.Config{Webhooks: cfg, AllowPrivateTargets: true})
	w := b.webhook(rc.srv.URL, store.NewWebhook{})
	watcher := b.webhook(newReceiver(t, nil).srv.URL, store.NewWebhook{EventTypes: []string{event.WebhookDisabled}})
	for range 3 {
		b.append(event.WorkerLost, nil, map[string]string{})
	}
	b.waitDeliveries(w, 3, store.DeliveryFailed)
	got, err := b.st.GetWebhook(b.ctx, w.ID)
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.Equal(t, 3, got.ConsecutiveFailures)
	require.GreaterOrEqual(t, got.ConsecutiveFailedAttempts, 3, "every attempt failed")
	failures, err := b.st.WebhookFailures(b.ctx)
	require.NoError(t, err)
	require.Equal(t, got.ConsecutiveFailedAttempts, failures[w.ID], "the gauge counts failed attempts")
	require.Contains(t, *got.DisabledReason, "3 consecutive deliveries failed")

	evs, _, err := b.st.ListEvents(b.ctx, store.EventFilter{TypePrefix: event.WebhookDisabled}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	var doc apiv1.Webhook
	require.NoError(t, json.Unmarshal(evs[0].Data, &doc))
	require.Equal(t, w.ID, doc.ID)
	require.False(t, doc.Enabled)
	require.NotContains(t, string(evs[0].Data), w.Secret)
	// Another endpoint hears of it.
	b.waitDeliveries(watcher, 1, store.DeliveryDelivered)

	// Nothing more is sent to a disabled endpoint.
	before := len(rc.requests())
	b.append(event.WorkerLost, nil, map[string]string{})
	require.Len(t, b.deliveries(w), 3, "no delivery for a disabled endpoint")
	require.Equal(t, before, len(rc.requests()))
}

func TestRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	b := setup(t, webhook.Config{Webhooks: fast(), AllowPrivateTargets: true})
	old := b.webhook(rc.srv.URL, store.NewWebhook{})
	rotated, err := b.st.RotateWebhookSecret(b.ctx, old.ID, time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, old.Secret, rotated.Secret)
	b.append(event.WorkerUp, nil, map[string]string{})
	b.waitDeliveries(old, 1, store.DeliveryDelivered)
	r := rc.requests()[0]
	h := r.header.Get(signature.Header)
	require.Equal(t, 2, strings.Count(h, "v1="))
	require.NoError(t, signature.Verify(h, r.body, signature.DefaultTolerance, rotated.Secret))
	require.NoError(t, signature.Verify(h, r.body, signature.DefaultTolerance, old.Secret))

	// A grace of 0 ends the old secret at once.
	again, err := b.st.RotateWebhookSecret(b.ctx, old.ID, 0)
	require.NoError(t, err)
	b.append(event.WorkerUp, nil, map[string]string{})
	b.waitDeliveries(old, 2, store.DeliveryDelivered)
	r = rc.requests()[1]
	h = r.header.Get(signature.Header)
	require.Equal(t, 1, strings.Count(h, "v1="))
	require.NoError(t, signature.Verify(h, r.body, signature.DefaultTolerance, again.Secret))
	require.ErrorIs(t, signature.Verify(h, r.body, signature.DefaultTolerance, rotated.Secret), signature.ErrMismatch)
}

// A stream's events are sent one at a time, in order, even when the first
// needs retries and several requests can be in flight; another stream's
// events do not wait.
func TestOrderPerStream(t *testing.T) {
	t.Parallel()
	var failOnce sync.Once
	rc := newReceiver(t, func(_ http.ResponseWriter, r *http.Request, _ int) int {
		status := http.StatusOK
		if r.Header.Get(signature.EventTypeHeader) == event.StreamLive {
			failOnce.Do(func() { status = http.StatusBadGateway })
		}
		return status
	})
	cfg := fast()
	cfg.Concurrency = 8
	b := setup(t, webhook.Config{Webhooks: cfg, AllowPrivateTargets: true})
	w := b.webhook(rc.srv.URL, store.NewWebhook{})
	s1, s2 := uuid.New(), uuid.New()
	var want1, want2 []string
	want1 = append(want1, b.append(event.StreamLive, &s1, map[string]int{}).ID.String())
	for i := range 10 {
		want1 = append(want1, b.append(event.StreamUpdated, &s1, map[string]int{"n": i}).ID.String())
		want2 = append(want2, b.append(event.StreamUpdated, &s2, map[string]int{"n": i}).ID.String())
	}
	b.waitDeliveries(w, 21, store.DeliveryDelivered)
	var got1, got2 []string
	for _, id := range rc.delivered() {
		switch {
		case slices.Contains(want1, id):
			got1 = append(got1, id)
		case slices.Contains(want2, id):
			got2 = append(got2, id)
		}
	}
	require.Equal(t, want1, got1)
	require.Equal(t, want2, got2)
	// Exactly one request per event but the retried one: nothing was sent
	// while an older event of its stream was pending.
	require.Len(t, rc.requests(), 22)
}

// The address is checked when the connection is made: an endpoint stored
// with a loopback URL (as if its name had resolved elsewhere at creation:
// DNS rebinding) is refused by the dialer.
func TestPrivateTargetsRefusedAtConnection(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	b := setup(t, webhook.Config{Webhooks: fast()})
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":"):]
	w := b.webhook("http://localhost"+port+"/hook", store.NewWebhook{})
	b.append(event.WorkerUp, nil, map[string]string{})
	require.Eventually(t, func() bool {
		ds := b.deliveries(w)
		return len(ds) == 1 && len(ds[0].AttemptLog) >= 1
	}, wait, 20*time.Millisecond)
	a := b.deliveries(w)[0].AttemptLog[0]
	require.Nil(t, a.StatusCode)
	require.Contains(t, *a.Error, "loopback address")
	require.Empty(t, rc.requests())
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 30; n++ {
		bound := min(time.Second<<min(n-1, 20), time.Hour)
		for range 50 {
			d := webhook.Backoff(n, time.Second, time.Hour)
			require.GreaterOrEqual(t, d, bound/2, "attempt %d", n)
			require.LessOrEqual(t, d, bound, "attempt %d", n)
		}
	}
}

func TestCheckEventType(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"stream.live", "stream.*", "session.*", "webhook.disabled", "worker.*"} {
		require.NoError(t, webhook.CheckEventType(ok), ok)
	}
	for _, bad := range []string{"", "stream", "stream.", "stream.livee", "nope.*", "*", "stream.**", "Stream.live"} {
		require.Error(t, webhook.CheckEventType(bad), bad)
	}
}
