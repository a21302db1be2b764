package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/signature"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func (b *testBundle) createWebhook(body any) apiv1.WebhookWithSecret {
	b.t.Helper()
	r := b.do(http.MethodPost, "/api/v1/webhooks", b.adminKey, body)
	require.Equal(b.t, http.StatusCreated, r.status, string(r.body))
	var w apiv1.WebhookWithSecret
	r.decode(b.t, &w)
	return w
}

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, bundleOpts{allowPrivateTargets: true})
	s := b.createStream(map[string]any{"name": "news"})

	w := b.createWebhook(map[string]any{"url": "http://127.0.0.1:9/hook", "event_types": []string{"stream.*", "session.ended"},
		"stream_id": s.ID, "description": "ops"})
	require.True(t, strings.HasPrefix(w.Secret, "whsec_"), w.Secret)
	require.True(t, w.Enabled)
	require.Equal(t, []string{"stream.*", "session.ended"}, w.EventTypes)
	require.Equal(t, &s.ID, w.StreamID)
	require.Nil(t, w.PreviousSecretExpiresAt)

	// The secret is shown only by create and rotate-secret.
	r := b.do(http.MethodGet, "/api/v1/webhooks/"+w.ID.String(), b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, string(r.body), w.Secret)
	require.NotContains(t, string(r.body), `"secret"`)
	r = b.do(http.MethodGet, "/api/v1/webhooks", b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var list apiv1.List[apiv1.Webhook]
	r.decode(t, &list)
	require.Len(t, list.Data, 1)
	require.NotContains(t, string(r.body), w.Secret)

	r = b.do(http.MethodPatch, "/api/v1/webhooks/"+w.ID.String(), b.adminKey,
		map[string]any{"event_types": []string{}, "stream_id": nil, "enabled": false, "description": "all"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var got apiv1.Webhook
	r.decode(t, &got)
	require.Empty(t, got.EventTypes)
	require.Nil(t, got.StreamID)
	require.False(t, got.Enabled)
	require.Equal(t, "all", got.Description)
	require.Equal(t, w.URL, got.URL)

	r = b.do(http.MethodPost, "/api/v1/webhooks/"+w.ID.String()+"/rotate-secret", b.adminKey, map[string]int{"grace_seconds": 600})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var rotated apiv1.WebhookWithSecret
	r.decode(t, &rotated)
	require.NotEqual(t, w.Secret, rotated.Secret)
	require.NotNil(t, rotated.PreviousSecretExpiresAt)
	require.WithinDuration(t, time.Now().Add(10*time.Minute), *rotated.PreviousSecretExpiresAt, time.Minute)
	r = b.do(http.MethodPost, "/api/v1/webhooks/"+w.ID.String()+"/rotate-secret", b.adminKey, nil)
	require.Equal(t, http.StatusOK, r.status, "no body: the configured grace")
	r.decode(t, &rotated)
	require.WithinDuration(t, time.Now().Add(config.DefaultWebhookRotationGrace), *rotated.PreviousSecretExpiresAt, time.Minute)

	r = b.do(http.MethodPost, "/api/v1/webhooks/"+w.ID.String()+"/test", b.adminKey, nil)
	require.Equal(t, http.StatusConflict, r.status, "a disabled endpoint gets no test")
	require.Contains(t, r.problem(t).Detail, "enabled=true")

	r = b.do(http.MethodPost, "/api/v1/webhooks/"+w.ID.String()+"/rotate-secret", b.readKey, nil)
	require.Equal(t, http.StatusForbidden, r.status)
	r = b.do(http.MethodDelete, "/api/v1/webhooks/"+w.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = b.do(http.MethodGet, "/api/v1/webhooks/"+w.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r.problem(t)
	r = b.do(http.MethodDelete, "/api/v1/webhooks/"+w.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	strict := setup(t)
	unknownStream := uuid.New()
	tests := []struct {
		name   string
		body   map[string]any
		field  string
		detail string
	}{
		{"loopback", map[string]any{"url": "http://127.0.0.1:8080/hook"}, "url", "127.0.0.1 is a loopback address"},
		{"a name resolving to loopback", map[string]any{"url": "http://localhost:8080/hook"}, "url", "localhost resolves to"},
		{"metadata", map[string]any{"url": "http://169.254.169.254/latest/meta-data"}, "url", "cloud metadata"},
		{"private", map[string]any{"url": "https://10.0.0.8/hook"}, "url", "private address"},
		{"ipv6 loopback", map[string]any{"url": "http://[::1]:9000/"}, "url", "loopback"},
		{"mapped", map[string]any{"url": "http://[::ffff:192.168.0.1]/"}, "url", "private"},
		{"scheme", map[string]any{"url": "ftp://example.com/"}, "url", "http:// or https://"},
		{"empty url", map[string]any{"url": ""}, "url", "must not be empty"},
		{"unknown type", map[string]any{"url": "https://93.184.216.34/", "event_types": []string{"stream.exploded"}}, "event_types[0]", "not an event type"},
		{"unknown prefix", map[string]any{"url": "https://93.184.216.34/", "event_types": []string{"nothing.*"}}, "event_types[0]", "matches no event type"},
		{"duplicate type", map[string]any{"url": "https://93.184.216.34/", "event_types": []string{"stream.live", "stream.live"}}, "event_types[1]", "duplicate"},
		{"unknown stream", map[string]any{"url": "https://93.184.216.34/", "stream_id": unknownStream}, "stream_id", "no stream with id " + unknownStream.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strict.do(http.MethodPost, "/api/v1/webhooks", strict.adminKey, tt.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
			p := r.problem(t)
			require.Len(t, p.Errors, 1, string(r.body))
			require.Equal(t, tt.field, p.Errors[0].Field)
			require.Contains(t, p.Errors[0].Detail, tt.detail)
			if tt.field == "url" && tt.name != "scheme" && tt.name != "empty url" {
				require.Contains(t, p.Errors[0].Detail, config.VarAllowPrivateTargets.Env, "the message names the switch")
			}
		})
	}
	// The same URL is accepted when private targets are allowed.
	open := setup(t, bundleOpts{allowPrivateTargets: true})
	open.createWebhook(map[string]any{"url": "http://localhost:8080/hook"})
	r := open.do(http.MethodPost, "/api/v1/webhooks", open.adminKey, map[string]any{"url": "ftp://127.0.0.1/"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "the scheme is checked whatever the switch")

	// PATCH checks the same way.
	w := open.createWebhook(map[string]any{"url": "http://127.0.0.1:9/"})
	r = strict.do(http.MethodPatch, "/api/v1/webhooks/"+uuid.NewString(), strict.adminKey, map[string]any{"url": "http://127.0.0.1/"})
	require.Equal(t, http.StatusNotFound, r.status)
	r = open.do(http.MethodPatch, "/api/v1/webhooks/"+w.ID.String(), open.adminKey, map[string]any{"event_types": []string{"x"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "event_types[0]", r.problem(t).Errors[0].Field)
	r = open.do(http.MethodPost, "/api/v1/webhooks/"+w.ID.String()+"/rotate-secret", open.adminKey, map[string]int{"grace_seconds": -1})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "grace_seconds", r.problem(t).Errors[0].Field)
}

// POST /webhooks/{id}/test is delivered (signed) to that endpoint alone, and
// its deliveries list the attempts; POST /events/{id}/redeliver sends it
// again; enabling an endpoint the platform disabled clears its failures.
func TestWebhookTestDeliveriesAndRedeliver(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		got  []*http.Request
		fail = true
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		mu.Lock()
		defer mu.Unlock()
		r.Header.Set("X-Body", string(body))
		got = append(got, r)
		if fail {
			fail = false
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)
	requests := func() []*http.Request {
		mu.Lock()
		defer mu.Unlock()
		return append([]*http.Request(nil), got...)
	}
	b := setup(t, bundleOpts{allowPrivateTargets: true, background: true,
		webhooks: config.Webhooks{BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, PollInterval: 50 * time.Millisecond}})
	w := b.createWebhook(map[string]any{"url": rcv.URL, "event_types": []string{"stream.live"}})
	other := b.createWebhook(map[string]any{"url": rcv.URL + "/other"})

	r := b.do(http.MethodPost, "/api/v1/webhooks/"+w.ID.String()+"/test", b.adminKey, nil)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var sent apiv1.WebhookTestSent
	r.decode(t, &sent)

	deliveries := func(id uuid.UUID) []apiv1.WebhookDelivery {
		r := b.do(http.MethodGet, "/api/v1/webhooks/"+id.String()+"/deliveries", b.readKey, nil)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var page apiv1.List[apiv1.WebhookDelivery]
		r.decode(t, &page)
		return page.Data
	}
	var ds []apiv1.WebhookDelivery
	require.Eventually(t, func() bool {
		ds = deliveries(w.ID)
		return len(ds) == 1 && ds[0].Status == store.DeliveryDelivered
	}, 90*time.Second, 50*time.Millisecond)
	d := ds[0]
	require.Equal(t, sent.EventID, d.EventID)
	require.Equal(t, event.WebhookTest, d.EventType)
	require.Equal(t, 2, d.Attempts)
	require.Equal(t, 200, *d.LastStatusCode)
	require.Nil(t, d.NextAttemptAt)
	require.Len(t, d.AttemptLog, 2)
	require.Equal(t, 500, *d.AttemptLog[0].StatusCode)
	require.Equal(t, "HTTP 500", *d.AttemptLog[0].Error)
	require.Equal(t, 200, *d.AttemptLog[1].StatusCode)
	require.Empty(t, deliveries(other.ID), "a test event goes to its endpoint alone")
	for _, req := range requests() {
		require.Equal(t, "/", req.URL.Path)
		require.NoError(t, signature.Verify(req.Header.Get(signature.Header), []byte(req.Header.Get("X-Body")), 0, w.Secret))
		require.Equal(t, event.WebhookTest, req.Header.Get(signature.EventTypeHeader))
	}

	// Redeliver: the same delivery, pending again, then delivered again.
	r = b.do(http.MethodPost, "/api/v1/events/"+sent.EventID.String()+"/redeliver", b.adminKey, nil)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var again apiv1.EventRedelivered
	r.decode(t, &again)
	require.Equal(t, []uuid.UUID{w.ID}, again.WebhookIDs)
	require.Eventually(t, func() bool { return len(requests()) == 3 }, 90*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		ds = deliveries(w.ID)
		return len(ds) == 1 && ds[0].Status == store.DeliveryDelivered && ds[0].Attempts == 3
	}, 90*time.Second, 50*time.Millisecond)

	r = b.do(http.MethodPost, "/api/v1/events/"+uuid.NewString()+"/redeliver", b.adminKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Contains(t, r.problem(t).Detail, "no event with id")

	// An endpoint the platform disabled: enabling it clears its failures.
	_, err := b.st.DisableWebhook(t.Context(), w.ID, "20 consecutive deliveries failed")
	require.NoError(t, err)
	r = b.do(http.MethodGet, "/api/v1/webhooks/"+w.ID.String(), b.readKey, nil)
	var doc apiv1.Webhook
	r.decode(t, &doc)
	require.False(t, doc.Enabled)
	require.Equal(t, "20 consecutive deliveries failed", *doc.DisabledReason)
	r = b.do(http.MethodPatch, "/api/v1/webhooks/"+w.ID.String(), b.adminKey, map[string]any{"enabled": true})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r.decode(t, &doc)
	require.True(t, doc.Enabled)
	require.Nil(t, doc.DisabledReason)
	require.Zero(t, doc.ConsecutiveFailures)

	require.NotContains(t, b.logs.String(), w.Secret)
	r = b.do(http.MethodGet, "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.status)
	for _, m := range []string{`dionysia_webhook_deliveries_total{result="delivered"} 2`, `dionysia_webhook_deliveries_total{result="retried"} 1`,
		"dionysia_webhook_attempt_duration_seconds_count 3", "dionysia_webhook_pending_deliveries 0",
		`dionysia_webhook_endpoint_consecutive_failures{webhook_id="` + w.ID.String() + `"} 0`, "dionysia_webhook_endpoints_disabled_total 0"} {
		require.Contains(t, string(r.body), m)
	}
	r = b.do(http.MethodGet, fmt.Sprintf("/api/v1/webhooks/%s/deliveries?limit=0", w.ID), b.readKey, nil)
	require.Equal(t, http.StatusBadRequest, r.status)
}
