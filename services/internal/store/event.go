package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
)

// Event is one entry of the event log (the transactional outbox): a change
// that was committed, with the resource as it was after it.
type Event struct {
	ID        uuid.UUID // UUIDv7
	Seq       int64     // insertion order
	Type      string    // e.g. "stream.live"; the catalogue is package event's
	StreamID  *uuid.UUID
	WebhookID *uuid.UUID // set only on a webhook.test event: delivered to that endpoint alone
	CreatedAt time.Time
	Data      json.RawMessage
}

// NewEvent is what AppendEvent records.
type NewEvent struct {
	Type      string
	StreamID  *uuid.UUID
	WebhookID *uuid.UUID
	// Data is encoded as JSON: the resource as it is after the change.
	Data any
}

func eventFromRow(r dbq.Event) Event {
	return Event{ID: r.ID, Seq: r.Seq, Type: r.Type, StreamID: r.StreamID, WebhookID: r.WebhookID,
		CreatedAt: r.CreatedAt, Data: json.RawMessage(r.Data)}
}

// AppendEvent records an event. Call it on the Store of an InTx with the
// change it records, so that both commit or neither does. The database fans
// it out to the matching enabled webhooks in the same transaction (migration
// 00008).
func (s *Store) AppendEvent(ctx context.Context, n NewEvent) (Event, error) {
	data, err := json.Marshal(n.Data)
	if err != nil {
		return Event{}, fmt.Errorf("encoding the data of a %s event: %w", n.Type, err)
	}
	row, err := s.q.InsertEvent(ctx, dbq.InsertEventParams{ID: newID(), Type: n.Type, StreamID: n.StreamID,
		WebhookID: n.WebhookID, Data: data})
	if err != nil {
		return Event{}, fmt.Errorf("recording a %s event: %w", n.Type, interpretError(err))
	}
	return eventFromRow(row), nil
}

// GetEvent returns an event by id (ErrNotFound when it does not exist or was
// pruned).
func (s *Store) GetEvent(ctx context.Context, id uuid.UUID) (Event, error) {
	row, err := s.q.GetEvent(ctx, id)
	if err != nil {
		return Event{}, fmt.Errorf("getting event %s: %w", id, interpretError(err))
	}
	return eventFromRow(row), nil
}

// EventFilter selects events. Zero fields select everything.
type EventFilter struct {
	// TypePrefix keeps the events whose type starts with it: "session."
	// (every session event) or "stream.live" (one type).
	TypePrefix string
	StreamID   *uuid.UUID
}

func (f EventFilter) typePrefix() *string {
	if f.TypePrefix == "" {
		return nil
	}
	// LIKE's wildcards in a prefix are literal characters.
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	p := r.Replace(f.TypePrefix)
	return &p
}

// ListEvents returns a page of events, newest first. page.After is the last
// id of the previous page; the returned cursor is the next page's.
func (s *Store) ListEvents(ctx context.Context, f EventFilter, page Page) ([]Event, *uuid.UUID, error) {
	rows, err := s.q.ListEvents(ctx, dbq.ListEventsParams{Before: page.After, TypePrefix: f.typePrefix(),
		StreamID: f.StreamID, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing events: %w", interpretError(err))
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = eventFromRow(r)
	}
	items, next := paginate(out, page.Limit, func(e Event) uuid.UUID { return e.ID })
	return items, next, nil
}

// EventsAfter returns up to limit events inserted after the one of seq
// afterSeq, oldest first: what a follower has not seen yet. It returns only
// events whose transaction is older than every transaction still running, so
// that a follower never skips an event: a transaction can commit a later seq
// before an earlier one's commits (migration 00009). An event thus reaches a
// follower once the transactions that began before it ended.
func (s *Store) EventsAfter(ctx context.Context, f EventFilter, afterSeq int64, limit int) ([]Event, error) {
	rows, err := s.q.ListSettledEventsAfter(ctx, dbq.ListSettledEventsAfterParams{AfterSeq: afterSeq, TypePrefix: f.typePrefix(),
		StreamID: f.StreamID, MaxRows: int32(max(limit, 1))})
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", interpretError(err))
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = eventFromRow(r)
	}
	return out, nil
}

// PruneEvents deletes up to limit events created before before (their
// deliveries with them) and returns how many it deleted.
func (s *Store) PruneEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	n, err := s.q.PruneEvents(ctx, dbq.PruneEventsParams{OlderThan: before, MaxRows: int32(max(limit, 1))})
	if err != nil {
		return 0, fmt.Errorf("pruning events: %w", interpretError(err))
	}
	return n, nil
}
