package job

import (
	"time"

	"github.com/google/uuid"
)

// Session events are what a worker tells the control plane about a session it
// runs: POST {api}/internal/v1/sessions/{session_id}/events with
// "Authorization: Bearer <worker secret>" and a SessionEvent as JSON body. The
// API records them on the stream_sessions row (worker, status, reason).

// Session event types.
const (
	EventStarted   = "started"   // the worker owns the stream and its pipeline is playing
	EventRestarted = "restarted" // the pipeline failed and was restarted (Reason says why)
	EventFailed    = "failed"    // the worker gave up on the session (Reason says why)
	EventFinished  = "finished"  // the source ended or a stop was requested; outputs are closed
)

// SessionEvent is the body of a session event.
type SessionEvent struct {
	// ID names the event across retries of its delivery: the API records an
	// ID once (StopSignal.FirstDelivery). Workers set it; empty is accepted
	// (no deduplication).
	ID        uuid.UUID `json:"id,omitzero"`
	StreamID  uuid.UUID `json:"stream_id"`
	SessionID uuid.UUID `json:"session_id"`
	WorkerID  string    `json:"worker_id"`
	Type      string    `json:"type"`
	Reason    string    `json:"reason,omitempty"`
	// Renditions lists the rungs actually produced (rungs larger than the
	// source are skipped); set on EventStarted.
	Renditions []string  `json:"renditions,omitempty"`
	Time       time.Time `json:"time"`
}

// SessionEventPath is the API path a SessionEvent is posted to.
func SessionEventPath(sessionID uuid.UUID) string {
	return "/internal/v1/sessions/" + sessionID.String() + "/events"
}
