// Package job is the contract between the control plane, which enqueues one
// transcode task per live session, and the worker fleet, which runs them.
//
// A task carries references and a snapshot of the stream's settings, never a
// credential: where to pull the stream from (the edge URL holds the stream
// key) and the read password are fetched by the worker from the API each time
// a pipeline run starts (GET SourcePath, with the worker secret), so the
// publish credential never sits in Redis and a republish or a move to another
// edge is picked up on the next run.
//
// Tasks are hibiken/asynq tasks of type TypeTranscode. There is one queue per
// hardware class (QueueGPU, QueueCPU); a worker listens only to the queues it
// can serve. The task ID is derived from the session ID (TaskID), so a session
// can never be enqueued twice.
package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/google/uuid"
)

// TypeTranscode is the asynq task type of a live transcode.
const TypeTranscode = "stream:transcode"

// Hardware classes, which are also the suffixes of the queue names.
const (
	ClassGPU = "gpu"
	ClassCPU = "cpu"
)

// Queues, one per hardware class.
const (
	QueueGPU = "transcode-gpu"
	QueueCPU = "transcode-cpu"
)

// Hardware preferences a stream can have.
const (
	HardwareAuto = "auto"
	HardwareGPU  = "gpu"
	HardwareCPU  = "cpu"
)

// Output formats.
const (
	OutputHLS  = "hls"
	OutputDASH = "dash"
)

// Playback policies.
const (
	PolicyPublic = "public"
	PolicySigned = "signed"
)

// Timeout is the explicit asynq timeout for a live transcode. asynq applies 30
// minutes when none is given, which would kill every long stream; a live session
// ends by its stop signal, not by this timeout.
const Timeout = 24 * time.Hour

// MaxDVRWindowS is the longest DVR window a stream can have: 6 hours.
const MaxDVRWindowS = 6 * 3600

// QueueFor returns the queue for a hardware class.
func QueueFor(class string) string {
	if class == ClassGPU {
		return QueueGPU
	}
	return QueueCPU
}

// TaskID is the asynq task ID of a session's transcode task. A second enqueue
// of the same session fails with asynq.ErrTaskIDConflict.
func TaskID(sessionID uuid.UUID) string { return "transcode:" + sessionID.String() }

// SourcePath is the API path a worker fetches a session's Source from: GET
// with "Authorization: Bearer <worker secret>". 200: the Source as JSON; 404:
// no such session; 409: the session is over (the worker ends it); 503 with
// Retry-After: the publisher dropped and may still reconnect (the worker waits
// as for an ended source).
func SourcePath(sessionID uuid.UUID) string {
	return "/internal/v1/sessions/" + sessionID.String() + "/source"
}

// Source says where a worker pulls the live stream from and with which
// credential. The credential is scoped to reading this one stream path. It is
// never part of a task: workers fetch it from SourcePath.
type Source struct {
	URL      string `json:"url"`      // e.g. rtmp://edge:1935/live/<stream_key>, or srt://edge:8890?streamid=read:live/<stream_key>
	User     string `json:"user"`     // edge read credential
	Password string `json:"password"` // never logged
}

// String and LogValue keep secrets out of logs: the path of a pull URL holds
// the stream key (the edge's path is live/<stream_key>), so only the scheme and
// host are shown.
func (s Source) String() string {
	u, err := url.Parse(s.URL)
	if err != nil {
		return "<unparsable source url>"
	}
	return u.Scheme + "://" + u.Host + "/<redacted>"
}

// LogValue implements slog.LogValuer.
func (s Source) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Transcode is the payload of a TypeTranscode task. It holds no secret (it
// sits in Redis: the queue and the dispatch record): the source is fetched
// from the API (SourcePath).
type Transcode struct {
	StreamID  uuid.UUID `json:"stream_id"`
	SessionID uuid.UUID `json:"session_id"`

	ProfileID   uuid.UUID     `json:"profile_id"`
	ProfileName string        `json:"profile_name"`
	Ladder      ladder.Ladder `json:"ladder"`

	Outputs            []string `json:"outputs"`              // OutputHLS and/or OutputDASH
	SegmentDuration    float64  `json:"segment_duration"`     // seconds
	PlaylistWindowSize int      `json:"playlist_window_size"` // segments kept in the live window
	Hardware           string   `json:"hardware"`             // the stream's preference: auto, gpu or cpu
	// PlaybackPolicy is the stream's policy when the task was built: the
	// control plane assigns the stream with it. Nobody enforces it from the
	// task: routers and origins read the live policy from Redis
	// (ownership.Store.Policy), which follows every change.
	PlaybackPolicy string `json:"playback_policy"`

	// Recording is set when the session records (docs/recording.md): the
	// worker uploads every completed segment to the store, into that asset.
	Recording *Recording `json:"recording,omitempty"`
	// DVRWindowS is how much history the live playlists and the MPD offer,
	// in seconds; 0: PlaylistWindowSize segments only.
	DVRWindowS int `json:"dvr_window_s,omitempty"`
	// ThumbnailIntervalS is how often the worker refreshes the stream's
	// thumbnail, in seconds; 0: the default (10 s).
	ThumbnailIntervalS float64 `json:"thumbnail_interval_s,omitempty"`

	EnqueuedAt time.Time `json:"enqueued_at"`
}

// ErrInvalidPayload wraps every reason a payload cannot be run. Handlers treat
// it as permanent (asynq.SkipRetry).
var ErrInvalidPayload = errors.New("invalid transcode payload")

// Marshal encodes the payload.
func (t Transcode) Marshal() ([]byte, error) { return json.Marshal(t) }

// Unmarshal decodes and validates a payload.
func Unmarshal(b []byte) (Transcode, error) {
	var t Transcode
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return t, t.Validate()
}

// Validate checks what a worker needs.
func (t Transcode) Validate() error {
	switch {
	case t.StreamID == uuid.Nil:
		return fmt.Errorf("%w: stream_id is required", ErrInvalidPayload)
	case t.SessionID == uuid.Nil:
		return fmt.Errorf("%w: session_id is required", ErrInvalidPayload)
	case t.SegmentDuration < 1 || t.SegmentDuration > 10:
		return fmt.Errorf("%w: segment_duration must be 1-10 s, got %g", ErrInvalidPayload, t.SegmentDuration)
	case t.PlaylistWindowSize < 3 || t.PlaylistWindowSize > 100:
		return fmt.Errorf("%w: playlist_window_size must be 3-100, got %d", ErrInvalidPayload, t.PlaylistWindowSize)
	case t.PlaybackPolicy != PolicyPublic && t.PlaybackPolicy != PolicySigned:
		return fmt.Errorf("%w: playback_policy must be %q or %q, got %q", ErrInvalidPayload, PolicyPublic, PolicySigned, t.PlaybackPolicy)
	case t.DVRWindowS < 0 || t.DVRWindowS > MaxDVRWindowS:
		return fmt.Errorf("%w: dvr_window_s must be 0-%d, got %d", ErrInvalidPayload, MaxDVRWindowS, t.DVRWindowS)
	case t.ThumbnailIntervalS < 0 || t.ThumbnailIntervalS > 3600:
		return fmt.Errorf("%w: thumbnail_interval_s must be 0-3600, got %g", ErrInvalidPayload, t.ThumbnailIntervalS)
	case t.Recording != nil && t.Recording.AssetID == uuid.Nil:
		return fmt.Errorf("%w: recording.asset_id is required", ErrInvalidPayload)
	case len(t.Outputs) == 0:
		return fmt.Errorf("%w: at least one output is required", ErrInvalidPayload)
	}
	for _, o := range t.Outputs {
		if o != OutputHLS && o != OutputDASH {
			return fmt.Errorf("%w: unknown output %q", ErrInvalidPayload, o)
		}
	}
	if err := t.Ladder.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	return nil
}
