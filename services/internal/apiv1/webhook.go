package apiv1

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Webhook is an endpoint events are delivered to (docs/webhooks.md). Its
// secret is shown only by create and rotate-secret (WebhookWithSecret).
type Webhook struct {
	ID          uuid.UUID `json:"id"`
	URL         string    `json:"url"`
	Description string    `json:"description"`
	// EventTypes are exact types or "prefix.*" patterns; empty: every event.
	EventTypes []string   `json:"event_types"`
	StreamID   *uuid.UUID `json:"stream_id"` // only this stream's events; null: all
	Enabled    bool       `json:"enabled"`
	// ConsecutiveFailures counts the deliveries that failed for good in a
	// row; the platform disables the endpoint after DIONYSIA_WEBHOOK_DISABLE_AFTER.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// ConsecutiveFailedAttempts counts the attempts (of any delivery) that
	// failed since the last successful one.
	ConsecutiveFailedAttempts int `json:"consecutive_failed_attempts"`
	// DisabledReason says why the platform disabled the endpoint; null when
	// it is enabled or an operator disabled it.
	DisabledReason *string `json:"disabled_reason"`
	// PreviousSecretExpiresAt is when the secret before the last rotation
	// stops signing; null when no rotation grace runs.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// WebhookWithSecret is the answer of create and rotate-secret: the only
// time the signing secret is shown.
type WebhookWithSecret struct {
	Webhook
	Secret string `json:"secret"`
}

// WebhookCreate is the body of POST /webhooks.
type WebhookCreate struct {
	URL         string     `json:"url"`
	Description string     `json:"description"`
	EventTypes  []string   `json:"event_types"`
	StreamID    *uuid.UUID `json:"stream_id"`
	Enabled     *bool      `json:"enabled"` // default true
}

// WebhookUpdate is the body of PATCH /webhooks/{id}; absent fields are kept.
type WebhookUpdate struct {
	URL         *string    `json:"url"`
	Description *string    `json:"description"`
	EventTypes  *[]string  `json:"event_types"`
	StreamID    OptionalID `json:"stream_id"` // null removes the filter
	// Enabled true on an endpoint the platform disabled also clears its
	// failure count and reason.
	Enabled *bool `json:"enabled"`
}

// OptionalID is a nullable id field of a PATCH body whose absence (keep)
// differs from null (remove).
type OptionalID struct {
	Set bool
	ID  *uuid.UUID
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *OptionalID) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.ID = nil
		return nil
	}
	var id uuid.UUID
	if err := json.Unmarshal(b, &id); err != nil {
		return err
	}
	o.ID = &id
	return nil
}

// MarshalJSON implements json.Marshaler (absent is written as null).
func (o OptionalID) MarshalJSON() ([]byte, error) { return json.Marshal(o.ID) }

// WebhookRotateSecret is the optional body of POST /webhooks/{id}/rotate-secret.
type WebhookRotateSecret struct {
	// GraceSeconds is how long the current secret still signs (requests
	// carry both signatures meanwhile); default DIONYSIA_WEBHOOK_ROTATION_GRACE,
	// 0 ends it at once.
	GraceSeconds *int `json:"grace_seconds"`
}

// WebhookTestSent is the answer of POST /webhooks/{id}/test: the
// webhook.test event recorded and queued to that endpoint alone.
type WebhookTestSent struct {
	EventID uuid.UUID `json:"event_id"`
}

// WebhookDelivery is one event's delivery to one endpoint.
type WebhookDelivery struct {
	ID        uuid.UUID  `json:"id"`
	EventID   uuid.UUID  `json:"event_id"`
	EventType string     `json:"event_type"`
	StreamID  *uuid.UUID `json:"stream_id"`
	Status    string     `json:"status"` // pending, delivered or failed
	Attempts  int        `json:"attempts"`
	// NextAttemptAt is when a pending delivery is tried next; null once
	// delivered or failed.
	NextAttemptAt  *time.Time       `json:"next_attempt_at"`
	LastStatusCode *int             `json:"last_status_code"`
	LastError      *string          `json:"last_error"`
	CreatedAt      time.Time        `json:"created_at"`
	DeliveredAt    *time.Time       `json:"delivered_at"`
	FailedAt       *time.Time       `json:"failed_at"`
	AttemptLog     []WebhookAttempt `json:"attempt_log"` // oldest first
}

// WebhookAttempt is one HTTP request of a delivery.
type WebhookAttempt struct {
	AttemptedAt time.Time `json:"attempted_at"`
	StatusCode  *int      `json:"status_code"` // null: no answer (error says why)
	LatencyMS   int64     `json:"latency_ms"`
	Error       *string   `json:"error"`
}

// EventRedelivered is the answer of POST /events/{id}/redeliver.
type EventRedelivered struct {
	EventID uuid.UUID `json:"event_id"`
	// WebhookIDs are the enabled endpoints the event was queued to again.
	WebhookIDs []uuid.UUID `json:"webhook_ids"`
}

// WebhookPayload is the body of every webhook request.
type WebhookPayload struct {
	ID        uuid.UUID       `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	StreamID  *uuid.UUID      `json:"stream_id"`
	Data      json.RawMessage `json:"data"`
}
