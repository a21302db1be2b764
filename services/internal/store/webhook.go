package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/secret"
	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Webhook is an endpoint events are delivered to.
type Webhook struct {
	ID          uuid.UUID
	URL         string
	Description string
	EventTypes  []string   // exact types or "prefix.*"; empty: every event
	StreamID    *uuid.UUID // only this stream's events; nil: all
	Enabled     bool
	// Secret signs the requests; never log it. PreviousSecret is the one
	// before the last rotation, also signed with until
	// PreviousSecretExpiresAt.
	Secret                  string
	PreviousSecret          *string
	PreviousSecretExpiresAt *time.Time
	ConsecutiveFailures     int // deliveries failed for good in a row
	// ConsecutiveFailedAttempts counts the attempts (of any delivery) that
	// failed since the last successful one.
	ConsecutiveFailedAttempts int
	DisabledReason            *string // why the platform disabled it
	CreatedAt                 time.Time
	UpdatedAt                 time.Time
}

// String describes the webhook without its secrets.
func (w Webhook) String() string { return fmt.Sprintf("webhook %s (%s)", w.ID, w.URL) }

// SigningSecrets returns the secrets a request is signed with at now: the
// current one, and the previous one while its grace runs.
func (w Webhook) SigningSecrets(now time.Time) []string {
	return signingSecrets(w.Secret, w.PreviousSecret, w.PreviousSecretExpiresAt, now)
}

func signingSecrets(cur string, prev *string, until *time.Time, now time.Time) []string {
	if prev != nil && until != nil && now.Before(*until) {
		return []string{cur, *prev}
	}
	return []string{cur}
}

func webhookFromRow(r dbq.Webhook) Webhook {
	return Webhook{ID: r.ID, URL: r.Url, Description: r.Description, EventTypes: nonNil(r.EventTypes), StreamID: r.StreamID,
		Enabled: r.Enabled, Secret: r.Secret, PreviousSecret: r.PreviousSecret, PreviousSecretExpiresAt: r.PreviousSecretExpiresAt,
		ConsecutiveFailures: int(r.ConsecutiveFailures), ConsecutiveFailedAttempts: int(r.ConsecutiveFailedAttempts), DisabledReason: r.DisabledReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// NewWebhook is what CreateWebhook stores; the secret is generated.
type NewWebhook struct {
	URL         string
	Description string
	EventTypes  []string
	StreamID    *uuid.UUID
	Enabled     bool
}

// CreateWebhook stores an endpoint with a fresh secret (secret.NewWebhookSecret).
func (s *Store) CreateWebhook(ctx context.Context, n NewWebhook) (Webhook, error) {
	row, err := s.q.CreateWebhook(ctx, dbq.CreateWebhookParams{ID: newID(), Url: n.URL, Description: n.Description,
		EventTypes: nonNil(n.EventTypes), StreamID: n.StreamID, Enabled: n.Enabled, Secret: secret.NewWebhookSecret()})
	if err != nil {
		return Webhook{}, fmt.Errorf("creating webhook: %w", interpretError(err))
	}
	return webhookFromRow(row), nil
}

// GetWebhook returns the endpoint with id.
func (s *Store) GetWebhook(ctx context.Context, id uuid.UUID) (Webhook, error) {
	row, err := s.q.GetWebhook(ctx, id)
	if err != nil {
		return Webhook{}, fmt.Errorf("loading webhook %s: %w", id, interpretError(err))
	}
	return webhookFromRow(row), nil
}

// ListWebhooks returns a page of endpoints ordered by id and the cursor of
// the next page (nil on the last page).
func (s *Store) ListWebhooks(ctx context.Context, page Page) ([]Webhook, *uuid.UUID, error) {
	rows, err := s.q.ListWebhooks(ctx, dbq.ListWebhooksParams{After: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing webhooks: %w", interpretError(err))
	}
	out := make([]Webhook, len(rows))
	for i, r := range rows {
		out[i] = webhookFromRow(r)
	}
	items, next := paginate(out, page.Limit, func(w Webhook) uuid.UUID { return w.ID })
	return items, next, nil
}

// WebhookUpdate holds the fields to change; nil fields are kept.
type WebhookUpdate struct {
	URL         *string
	Description *string
	EventTypes  []string // nil: kept
	// SetStreamID replaces the stream filter with StreamID (nil: all streams).
	SetStreamID bool
	StreamID    *uuid.UUID
	// Enabled true also clears the failure count and the disabled reason,
	// and gives the endpoint's waiting deliveries a new retry window.
	Enabled *bool
}

// UpdateWebhook applies u and returns the endpoint.
func (s *Store) UpdateWebhook(ctx context.Context, id uuid.UUID, u WebhookUpdate) (Webhook, error) {
	var w Webhook
	err := s.tx(ctx, func(q *dbq.Queries) error {
		row, err := q.UpdateWebhook(ctx, dbq.UpdateWebhookParams{ID: id, Url: u.URL, Description: u.Description,
			EventTypes: u.EventTypes, SetStreamID: u.SetStreamID, StreamID: u.StreamID, Enabled: u.Enabled})
		if err != nil {
			return err
		}
		if u.Enabled != nil && *u.Enabled {
			if err := q.RequeueWebhookDeliveries(ctx, id); err != nil {
				return err
			}
			if err := q.NotifyDeliveries(ctx); err != nil {
				return err
			}
		}
		w = webhookFromRow(row)
		return nil
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("updating webhook %s: %w", id, interpretError(err))
	}
	return w, nil
}

// DeleteWebhook deletes an endpoint with its deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, id uuid.UUID) error {
	n, err := s.q.DeleteWebhook(ctx, id)
	if err != nil {
		return fmt.Errorf("deleting webhook %s: %w", id, interpretError(err))
	}
	if n == 0 {
		return fmt.Errorf("deleting webhook %s: %w", id, ErrNotFound)
	}
	return nil
}

// RotateWebhookSecret gives the endpoint a fresh secret; the current one
// stays valid (requests are signed with both) for grace.
func (s *Store) RotateWebhookSecret(ctx context.Context, id uuid.UUID, grace time.Duration) (Webhook, error) {
	row, err := s.q.RotateWebhookSecret(ctx, dbq.RotateWebhookSecretParams{ID: id, Secret: secret.NewWebhookSecret(),
		GraceSeconds: grace.Seconds()})
	if err != nil {
		return Webhook{}, fmt.Errorf("rotating the secret of webhook %s: %w", id, interpretError(err))
	}
	return webhookFromRow(row), nil
}

// DisableWebhook disables an enabled endpoint, saying why. It returns
// ErrNotFound when the endpoint does not exist or is disabled already.
func (s *Store) DisableWebhook(ctx context.Context, id uuid.UUID, reason string) (Webhook, error) {
	row, err := s.q.DisableWebhook(ctx, dbq.DisableWebhookParams{ID: id, Reason: &reason})
	if err != nil {
		return Webhook{}, fmt.Errorf("disabling webhook %s: %w", id, interpretError(err))
	}
	return webhookFromRow(row), nil
}

// StreamExists reports whether a stream with id exists.
func (s *Store) StreamExists(ctx context.Context, id uuid.UUID) (bool, error) {
	ok, err := s.q.StreamExists(ctx, id)
	if err != nil {
		return false, fmt.Errorf("looking stream %s up: %w", id, interpretError(err))
	}
	return ok, nil
}

// Delivery is one event's delivery to one endpoint, with its attempts.
type Delivery struct {
	ID             uuid.UUID
	WebhookID      uuid.UUID
	EventID        uuid.UUID
	EventType      string
	StreamID       *uuid.UUID
	Status         string // DeliveryPending, DeliveryDelivered or DeliveryFailed
	Attempts       int
	NextAttemptAt  *time.Time // nil once delivered or failed
	LastStatusCode *int
	LastError      *string
	CreatedAt      time.Time
	QueuedAt       time.Time // when it was (re)queued; retries run from here
	DeliveredAt    *time.Time
	FailedAt       *time.Time
	AttemptLog     []Attempt // oldest first
}

// Attempt is one HTTP request of a delivery.
type Attempt struct {
	AttemptedAt time.Time
	StatusCode  *int // nil: no answer (Error says why)
	Latency     time.Duration
	Error       *string
}

// ListDeliveries returns a page of an endpoint's deliveries, newest first,
// each with its attempts.
func (s *Store) ListDeliveries(ctx context.Context, webhookID uuid.UUID, page Page) ([]Delivery, *uuid.UUID, error) {
	rows, err := s.q.ListDeliveries(ctx, dbq.ListDeliveriesParams{WebhookID: webhookID, Before: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the deliveries of webhook %s: %w", webhookID, interpretError(err))
	}
	out := make([]Delivery, len(rows))
	ids := make([]uuid.UUID, len(rows))
	byID := map[uuid.UUID]*Delivery{}
	for i, r := range rows {
		d := Delivery{ID: r.ID, WebhookID: r.WebhookID, EventID: r.EventID, EventType: r.EventType, StreamID: r.StreamID,
			Status: r.Status, Attempts: int(r.Attempts), LastStatusCode: intPtr(r.LastStatusCode), LastError: r.LastError,
			CreatedAt: r.CreatedAt, QueuedAt: r.QueuedAt, DeliveredAt: r.DeliveredAt, FailedAt: r.FailedAt, AttemptLog: []Attempt{}}
		if r.Status == DeliveryPending {
			next := r.NextAttemptAt
			d.NextAttemptAt = &next
		}
		out[i], ids[i] = d, r.ID
	}
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	attempts, err := s.q.ListAttempts(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the attempts of webhook %s: %w", webhookID, interpretError(err))
	}
	for _, a := range attempts {
		if d := byID[a.DeliveryID]; d != nil {
			d.AttemptLog = append(d.AttemptLog, Attempt{AttemptedAt: a.AttemptedAt, StatusCode: intPtr(a.StatusCode),
				Latency: time.Duration(a.LatencyMs) * time.Millisecond, Error: a.Error})
		}
	}
	items, next := paginate(out, page.Limit, func(d Delivery) uuid.UUID { return d.ID })
	return items, next, nil
}

// RedeliverEvent queues an event again to every matching enabled endpoint
// (an existing delivery is reset to pending, a missing one inserted) and
// returns those endpoints' ids. ErrNotFound: no such event.
func (s *Store) RedeliverEvent(ctx context.Context, eventID uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.tx(ctx, func(q *dbq.Queries) error {
		if _, err := q.GetEvent(ctx, eventID); err != nil {
			return err
		}
		var err error
		if ids, err = q.RedeliverEvent(ctx, eventID); err != nil {
			return err
		}
		if len(ids) > 0 {
			return q.NotifyDeliveries(ctx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redelivering event %s: %w", eventID, interpretError(err))
	}
	return ids, nil
}

// Claim is a delivery claimed by a delivery worker, with what it needs to
// send it.
type Claim struct {
	ID         uuid.UUID
	WebhookID  uuid.UUID
	Attempts   int       // attempts made before this one
	QueuedAt   time.Time // retries run from here
	LeaseUntil time.Time // the claim's end: the delivery is due again then
	URL        string
	secret     string
	prevSecret *string
	prevUntil  *time.Time
	Event      Event
}

// SigningSecrets returns the endpoint's secrets to sign with at now.
func (c Claim) SigningSecrets(now time.Time) []string {
	return signingSecrets(c.secret, c.prevSecret, c.prevUntil, now)
}

// ClaimDeliveries claims up to max due deliveries for lease (the database's
// clock), keeping each endpoint's per-stream order (ClaimDueDeliveries in
// webhook_deliveries.sql).
func (s *Store) ClaimDeliveries(ctx context.Context, max int, lease time.Duration) ([]Claim, error) {
	rows, err := s.q.ClaimDueDeliveries(ctx, dbq.ClaimDueDeliveriesParams{MaxRows: int32(max), LeaseSeconds: lease.Seconds()})
	if err != nil {
		return nil, fmt.Errorf("claiming webhook deliveries: %w", interpretError(err))
	}
	out := make([]Claim, len(rows))
	for i, r := range rows {
		out[i] = Claim{ID: r.ID, WebhookID: r.WebhookID, Attempts: int(r.Attempts), QueuedAt: r.QueuedAt, LeaseUntil: r.LeaseUntil,
			URL: r.Url, secret: r.Secret, prevSecret: r.PreviousSecret, prevUntil: r.PreviousSecretExpiresAt,
			Event: Event{ID: r.EventID, Type: r.EventType, StreamID: r.EventStreamID, CreatedAt: r.EventCreatedAt, Data: json.RawMessage(r.EventData)}}
	}
	return out, nil
}

// AttemptResult is the outcome of one attempt of a claimed delivery.
type AttemptResult struct {
	AttemptedAt time.Time
	StatusCode  *int // nil: no answer
	Latency     time.Duration
	Error       string // "" on success
	// Status is the delivery's status after the attempt: DeliveryDelivered,
	// DeliveryPending (retried at NextAttemptAt) or DeliveryFailed.
	Status        string
	NextAttemptAt time.Time
}

// ErrClaimLost: the claim's lease ran out and the delivery was claimed again
// (or reset) before the attempt was recorded; the attempt is not recorded.
var ErrClaimLost = errors.New("delivery claim lost")

// RecordAttempt records an attempt of a claimed delivery and its outcome.
// It returns the endpoint's consecutive failed deliveries after it (0 once a
// delivery succeeds), or ErrClaimLost. Call it in an InTx with what follows
// from it (disabling the endpoint and recording that).
func (s *Store) RecordAttempt(ctx context.Context, c Claim, r AttemptResult) (int, error) {
	var code *int32
	if r.StatusCode != nil {
		v := int32(*r.StatusCode)
		code = &v
	}
	var errText *string
	if r.Error != "" {
		errText = &r.Error
	}
	failures := 0
	err := s.tx(ctx, func(q *dbq.Queries) error {
		if _, err := q.FinishAttempt(ctx, dbq.FinishAttemptParams{ID: c.ID, LeaseUntil: c.LeaseUntil, Status: r.Status,
			StatusCode: code, Error: errText, NextAttemptAt: r.NextAttemptAt}); err != nil {
			return err
		}
		if err := q.InsertAttempt(ctx, dbq.InsertAttemptParams{ID: newID(), DeliveryID: c.ID, AttemptedAt: r.AttemptedAt,
			StatusCode: code, LatencyMs: int32(r.Latency.Milliseconds()), Error: errText}); err != nil {
			return err
		}
		switch r.Status {
		case DeliveryDelivered:
			return q.ResetWebhookFailures(ctx, c.WebhookID)
		case DeliveryPending:
			return q.CountFailedAttempt(ctx, c.WebhookID)
		case DeliveryFailed:
			row, err := q.CountWebhookFailure(ctx, c.WebhookID)
			failures = int(row.ConsecutiveFailures)
			return err
		}
		return nil
	})
	if err != nil {
		err = interpretError(err)
		if errors.Is(err, ErrNotFound) {
			err = ErrClaimLost
		}
		return 0, fmt.Errorf("recording an attempt of delivery %s: %w", c.ID, err)
	}
	return failures, nil
}

// PendingDeliveries counts the deliveries waiting to be sent to enabled
// endpoints.
func (s *Store) PendingDeliveries(ctx context.Context) (int64, error) {
	n, err := s.q.CountPendingDeliveries(ctx)
	if err != nil {
		return 0, fmt.Errorf("counting pending deliveries: %w", interpretError(err))
	}
	return n, nil
}

// WebhookFailures returns every endpoint's failed attempts since its last
// successful one.
func (s *Store) WebhookFailures(ctx context.Context) (map[uuid.UUID]int, error) {
	rows, err := s.q.ListWebhookFailures(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing webhook failures: %w", interpretError(err))
	}
	out := make(map[uuid.UUID]int, len(rows))
	for _, r := range rows {
		out[r.ID] = int(r.ConsecutiveFailedAttempts)
	}
	return out, nil
}

// ListenDeliveries holds one connection of pool listening on the channel the
// event fan-out notifies (migration 00008) and calls notify for each
// notification, until ctx ends or the connection fails (it returns the
// error; the caller listens again).
func ListenDeliveries(ctx context.Context, pool *pgxpool.Pool, notify func()) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection to listen for deliveries: %w", err)
	}
	// A connection that listened is not given back to the pool: closing it
	// ends the LISTEN.
	defer func() {
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
	}()
	if err := dbq.New(conn).ListenDeliveries(ctx); err != nil {
		return fmt.Errorf("listening for deliveries: %w", err)
	}
	notify() // anything committed before the LISTEN
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("waiting for delivery notifications: %w", err)
		}
		notify()
	}
}
