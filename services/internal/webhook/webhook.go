// Package webhook delivers the event log to webhook endpoints
// (docs/webhooks.md, adr/0013).
//
// The database does the fan-out: a trigger turns each committed event into
// one pending delivery per matching enabled endpoint (migration 00008), so a
// delivery exists if and only if its event does. A Deliverer, run by every
// `dionysia api` process, claims due deliveries with FOR UPDATE SKIP LOCKED
// (replicas share the work), POSTs each signed event (pkg/signature), and
// records every attempt: delivered on a 2xx, otherwise retried with
// exponential backoff until DIONYSIA_WEBHOOK_RETRY_FOR has passed, then
// failed; an endpoint whose deliveries fail for good DIONYSIA_WEBHOOK_DISABLE_AFTER
// times in a row is disabled, with a webhook.disabled event.
package webhook

import (
	"fmt"
	"strings"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
)

// Doc is the API document of an endpoint (never its secrets): what the API
// answers and the data of a webhook.disabled event.
func Doc(w store.Webhook) apiv1.Webhook {
	d := apiv1.Webhook{ID: w.ID, URL: w.URL, Description: w.Description, EventTypes: w.EventTypes, StreamID: w.StreamID,
		Enabled: w.Enabled, ConsecutiveFailures: w.ConsecutiveFailures, ConsecutiveFailedAttempts: w.ConsecutiveFailedAttempts, DisabledReason: w.DisabledReason,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if w.PreviousSecret != nil {
		d.PreviousSecretExpiresAt = w.PreviousSecretExpiresAt
	}
	if d.EventTypes == nil {
		d.EventTypes = []string{}
	}
	return d
}

// CheckEventType validates a subscription pattern: an exact type of the
// catalogue (package event), or "<resource>.*" for a resource the catalogue
// has.
func CheckEventType(p string) error {
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		for _, t := range event.Types {
			if strings.HasPrefix(t, prefix+".") {
				return nil
			}
		}
		return fmt.Errorf("%q matches no event type: no type starts with %q", p, prefix+".")
	}
	for _, t := range event.Types {
		if t == p {
			return nil
		}
	}
	return fmt.Errorf("%q is not an event type; use an exact type (e.g. %q) or a prefix pattern (e.g. %q)", p,
		event.StreamLive, "stream.*")
}
