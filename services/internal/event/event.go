// Package event is the catalogue of the events Dionysia records in its event
// log (a transactional outbox in PostgreSQL, see store.AppendEvent) and
// delivers to webhooks. docs/events.md shows a payload of each.
package event

// Event types. A type is "<resource>.<what happened>"; webhooks subscribe to
// exact types or to "<resource>.*".
const (
	StreamCreated       = "stream.created"
	StreamUpdated       = "stream.updated"
	StreamDeleted       = "stream.deleted"
	StreamLive          = "stream.live"
	StreamDisconnected  = "stream.disconnected" // the publisher dropped; it may resume within the reconnect grace
	StreamIdle          = "stream.idle"
	StreamFailover      = "stream.failover"
	StreamHealthChanged = "stream.health_changed"

	SessionStarted = "session.started"
	SessionResumed = "session.resumed" // a dropped publisher came back within the grace: same session
	SessionEnded   = "session.ended"

	TranscodeStarted   = "transcode.started"
	TranscodeRestarted = "transcode.restarted"
	TranscodeFailed    = "transcode.failed"

	RecordingStarted = "recording.started" // a session of a recording stream started: its asset is recording
	RecordingReady   = "recording.ready"   // the asset was built: its VOD files are playable
	RecordingFailed  = "recording.failed"  // the asset could not be built (failure_reason says why)
	AssetDeleted     = "asset.deleted"     // an asset and its objects were deleted (by a request or retention)

	WorkerUp   = "worker.up"
	WorkerLost = "worker.lost"

	WebhookTest     = "webhook.test"     // sent by POST /webhooks/{id}/test to that endpoint alone
	WebhookDisabled = "webhook.disabled" // the platform disabled an endpoint after consecutive failures
)

// Types lists every type of the catalogue, in the order docs/events.md
// presents them.
var Types = []string{
	StreamCreated, StreamUpdated, StreamDeleted, StreamLive, StreamDisconnected, StreamIdle, StreamFailover,
	StreamHealthChanged,
	SessionStarted, SessionResumed, SessionEnded,
	TranscodeStarted, TranscodeRestarted, TranscodeFailed,
	RecordingStarted, RecordingReady, RecordingFailed, AssetDeleted,
	WorkerUp, WorkerLost,
	WebhookTest, WebhookDisabled,
}
