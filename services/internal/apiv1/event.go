package apiv1

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is one entry of the event log (docs/events.md): something that
// happened, with the resource as it was after the change. Data never holds a
// secret: no stream key, no ingest URL.
type Event struct {
	ID        uuid.UUID  `json:"id"` // UUIDv7
	Type      string     `json:"type"`
	CreatedAt time.Time  `json:"created_at"`
	StreamID  *uuid.UUID `json:"stream_id"` // the stream it is about; null for worker events
	// Data is one of EventStream, EventSession, EventFailover or
	// EventWorker, by type (docs/events.md lists which).
	Data json.RawMessage `json:"data"`
}

// EventStream is the data of the stream.* events: the stream as GET
// /streams/{id} shows it, without its stream_key and ingest URLs.
type EventStream struct {
	Stream
	// ResumeUntil is set on stream.disconnected: until when the publisher
	// may reconnect and continue its session (Session).
	ResumeUntil *time.Time `json:"resume_until,omitempty"`
}

// EventSession is the data of the session.* and transcode.* events: the
// session as GET /streams/{id}/sessions shows it, with its stream's id.
type EventSession struct {
	StreamID uuid.UUID `json:"stream_id"`
	Session
	// Reason is set on transcode.restarted and transcode.failed: what the
	// worker reported.
	Reason string `json:"reason,omitempty"`
}

// EventFailover is the data of stream.failover: a live session moved from
// one worker to another.
type EventFailover struct {
	StreamID   uuid.UUID `json:"stream_id"`
	SessionID  uuid.UUID `json:"session_id"`
	FromWorker string    `json:"from_worker"`
	ToWorker   string    `json:"to_worker"`
	// GapMs is the measured gap in milliseconds: from FromWorker's last
	// heartbeat (the last time the platform knew it alive) to the moment the
	// API recorded ToWorker's start. Null when FromWorker's heartbeat record
	// is gone (it left the fleet listing long before).
	GapMs *int64 `json:"gap_ms"`
	// FromLastSeen is FromWorker's last heartbeat, where GapMs starts.
	FromLastSeen *time.Time `json:"from_last_seen"`
	Session      Session    `json:"session"`
}

// EventWorker is the data of worker.up and worker.lost: the worker as GET
// /workers lists it.
type EventWorker struct {
	Worker
	// LostAt is set on worker.lost: when the platform declared it lost.
	LostAt *time.Time `json:"lost_at,omitempty"`
}
