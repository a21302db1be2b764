// Package apiv1 defines the JSON documents of the management API, version 1
// (/api/v1): what the server (package api) writes and reads and what the Go
// client (package client) sends and decodes. Field names are the wire names.
package apiv1

import (
	"time"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/google/uuid"
)

// Stream is a stream as the API shows it.
type Stream struct {
	ID                 uuid.UUID    `json:"id"`
	Name               string       `json:"name"`
	StreamKey          string       `json:"stream_key"`
	Profile            ProfileRef   `json:"profile"`
	Outputs            []string     `json:"outputs"`
	Hardware           string       `json:"hardware"`
	PlaybackPolicy     string       `json:"playback_policy"`
	SegmentDuration    int          `json:"segment_duration"`     // seconds
	PlaylistWindowSize int          `json:"playlist_window_size"` // segments
	Disabled           bool         `json:"disabled"`
	Status             string       `json:"status"`
	Ingest             IngestURLs   `json:"ingest"`
	Playback           PlaybackURLs `json:"playback"`
	CreatedAt          time.Time    `json:"created_at"`
	UpdatedAt          time.Time    `json:"updated_at"`
}

// ProfileRef names a stream's profile.
type ProfileRef struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

// IngestURLs are where a publisher sends a stream; each holds the stream key.
type IngestURLs struct {
	RTMP string `json:"rtmp"`
	SRT  string `json:"srt"`
	RTSP string `json:"rtsp"`
	WHIP string `json:"whip"`
}

// PlaybackURLs are where viewers watch a stream. Only the stream's outputs are set.
type PlaybackURLs struct {
	HLS  string `json:"hls,omitempty"`
	DASH string `json:"dash,omitempty"`
}

// StreamCreate is the body of POST /api/v1/streams. Absent fields take their
// defaults: profile "720p", outputs ["hls","dash"], hardware "auto",
// playback_policy "public", segment_duration 2, playlist_window_size 6.
type StreamCreate struct {
	Name               string   `json:"name"`
	Profile            *string  `json:"profile,omitempty"` // profile name or id
	Outputs            []string `json:"outputs,omitempty"`
	Hardware           *string  `json:"hardware,omitempty"`
	PlaybackPolicy     *string  `json:"playback_policy,omitempty"`
	SegmentDuration    *int     `json:"segment_duration,omitempty"`
	PlaylistWindowSize *int     `json:"playlist_window_size,omitempty"`
	Disabled           *bool    `json:"disabled,omitempty"`
}

// StreamUpdate is the body of PATCH /api/v1/streams/{id}: absent fields keep
// their value.
type StreamUpdate struct {
	Name               *string  `json:"name,omitempty"`
	Profile            *string  `json:"profile,omitempty"`
	Outputs            []string `json:"outputs,omitempty"`
	Hardware           *string  `json:"hardware,omitempty"`
	PlaybackPolicy     *string  `json:"playback_policy,omitempty"`
	SegmentDuration    *int     `json:"segment_duration,omitempty"`
	PlaylistWindowSize *int     `json:"playlist_window_size,omitempty"`
	Disabled           *bool    `json:"disabled,omitempty"`
}

// Profile is an ABR ladder profile.
type Profile struct {
	ID          uuid.UUID          `json:"id"`
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Builtin     bool               `json:"builtin"`
	Renditions  []ladder.Rendition `json:"renditions"`
	Audio       ladder.Audio       `json:"audio"`
	CreatedAt   time.Time          `json:"created_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
}

// ProfileCreate is the body of POST /api/v1/profiles. Unset rendition and audio
// fields take ladder.Ladder.WithDefaults's values.
type ProfileCreate struct {
	Name        string             `json:"name"`
	Description string             `json:"description,omitempty"`
	Renditions  []ladder.Rendition `json:"renditions"`
	Audio       ladder.Audio       `json:"audio"`
}

// ProfileUpdate is the body of PATCH /api/v1/profiles/{id}. Renditions and
// audio, when given, replace the ladder's (audio alone keeps the renditions).
type ProfileUpdate struct {
	Name        *string             `json:"name,omitempty"`
	Description *string             `json:"description,omitempty"`
	Renditions  *[]ladder.Rendition `json:"renditions,omitempty"`
	Audio       *ladder.Audio       `json:"audio,omitempty"`
}

// APIKey describes an API key; the key itself is never shown again.
type APIKey struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scope      string     `json:"scope"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// APIKeyCreate is the body of POST /api/v1/api-keys. Scope defaults to "admin".
type APIKeyCreate struct {
	Name  string `json:"name"`
	Scope string `json:"scope,omitempty"`
}

// APIKeyCreated is the answer to POST /api/v1/api-keys: the only time the
// key (Secret) is shown.
type APIKeyCreated struct {
	APIKey
	Secret string `json:"secret"`
}

// List is a page of a list endpoint. NextCursor, when not nil, fetches the next
// page (?cursor=...).
type List[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// Problem is an RFC 9457 problem document (application/problem+json).
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid field of a request, as a JSON path such as
// "renditions[1].width".
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// ProblemContentType is the media type of a Problem.
const ProblemContentType = "application/problem+json"

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string            `json:"status"` // "ok" or "unavailable"
	Checks map[string]string `json:"checks,omitempty"`
}
