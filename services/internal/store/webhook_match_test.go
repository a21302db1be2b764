package store_test

import (
	"testing"

	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestEventsFanOutToTheWebhooksThatTakeThem checks the database's matching
// (webhook_matches, migration 00012), which both the fan-out trigger and
// RedeliverEvent use.
func TestEventsFanOutToTheWebhooksThatTakeThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, other := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	hook := func(n store.NewWebhook) store.Webhook {
		t.Helper()
		n.URL, n.Enabled = "https://example.com/hook", true
		w, err := b.st.CreateWebhook(b.ctx, n)
		require.NoError(t, err)
		return w
	}
	all := hook(store.NewWebhook{})
	sessions := hook(store.NewWebhook{EventTypes: []string{"session.*"}})
	exact := hook(store.NewWebhook{EventTypes: []string{"stream.live", "stream.idle"}})
	ofA := hook(store.NewWebhook{StreamID: &a})
	off, err := b.st.CreateWebhook(b.ctx, store.NewWebhook{URL: "https://example.com/off"})
	require.NoError(t, err)

	for _, tc := range []struct {
		name      string
		event     store.NewEvent
		receivers []uuid.UUID
	}{
		{"every webhook without a filter", store.NewEvent{Type: "worker.up"}, []uuid.UUID{all.ID}},
		{"a prefix pattern", store.NewEvent{Type: "session.started", StreamID: &other}, []uuid.UUID{all.ID, sessions.ID}},
		{"a pattern is a prefix of whole words", store.NewEvent{Type: "sessions.x", StreamID: &other}, []uuid.UUID{all.ID}},
		{"exact types", store.NewEvent{Type: "stream.live", StreamID: &other}, []uuid.UUID{all.ID, exact.ID}},
		{"a stream filter", store.NewEvent{Type: "stream.idle", StreamID: &a}, []uuid.UUID{all.ID, exact.ID, ofA.ID}},
		{"a stream filter takes no event without a stream", store.NewEvent{Type: "worker.lost"}, []uuid.UUID{all.ID}},
		{"webhook.test goes to the webhook it names alone", store.NewEvent{Type: "webhook.test", WebhookID: &exact.ID}, []uuid.UUID{exact.ID}},
		{"webhook.test naming nobody goes nowhere", store.NewEvent{Type: "webhook.test"}, nil},
		{"a disabled webhook gets nothing", store.NewEvent{Type: "webhook.test", WebhookID: &off.ID}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.event.Data = struct{}{}
			ev, err := b.st.AppendEvent(b.ctx, tc.event)
			require.NoError(t, err)
			var got []uuid.UUID
			for _, w := range []store.Webhook{all, sessions, exact, ofA, off} {
				deliveries, _, err := b.st.ListDeliveries(b.ctx, w.ID, store.Page{Limit: 100})
				require.NoError(t, err)
				for _, d := range deliveries {
					if d.EventID == ev.ID {
						got = append(got, w.ID)
					}
				}
			}
			require.ElementsMatch(t, tc.receivers, got)

			// Redelivering asks the same question: the same receivers.
			again, err := b.st.RedeliverEvent(b.ctx, ev.ID)
			require.NoError(t, err)
			require.ElementsMatch(t, tc.receivers, again)
		})
	}
}
