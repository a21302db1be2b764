// Package apiv1 defines the JSON documents of the management API, version 1
// (/api/v1): what the server (package api) writes and reads and what the Go
// client (package client) sends and decodes. Field names are the wire names.
package apiv1

import (
	"github.com/dionysia/dionysia/pkg/problem"
	"time"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/google/uuid"
)

// Stream is a stream as the API shows it.
type Stream struct {
	ID                 uuid.UUID  `json:"id"`
	Name               string     `json:"name"`
	StreamKey          string     `json:"stream_key,omitempty"` // omitted only in event data (EventStream)
	Profile            ProfileRef `json:"profile"`
	Outputs            []string   `json:"outputs"`
	Hardware           string     `json:"hardware"`
	PlaybackPolicy     string     `json:"playback_policy"`
	SegmentDuration    int        `json:"segment_duration"`     // seconds
	PlaylistWindowSize int        `json:"playlist_window_size"` // segments
	Disabled           bool       `json:"disabled"`
	Status             string     `json:"status"`
	// Recording says whether the stream's sessions become assets.
	Recording          Recording    `json:"recording"`
	DVRWindowS         int          `json:"dvr_window_s"`         // seconds of live history; 0: the playlist window only
	ThumbnailIntervalS float64      `json:"thumbnail_interval_s"` // seconds between live thumbnails
	Ingest             IngestURLs   `json:"ingest,omitzero"`      // omitted only in event data (EventStream)
	Playback           PlaybackURLs `json:"playback"`
	// Session is the open session while the stream is live, else null.
	Session   *Session  `json:"session"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// Health is the live stream's health (docs/health.md); status unknown
	// while idle.
	Health StreamHealth `json:"health"`
}

// Session is one live session of a stream: from a publisher going live on an
// edge until it leaves.
type Session struct {
	ID         uuid.UUID  `json:"id"`
	Status     string     `json:"status"` // live, ended or failed
	EdgeID     string     `json:"edge_id"`
	Protocol   string     `json:"protocol,omitempty"` // rtmp, srt, rtsp, webrtc
	Source     Source     `json:"source"`
	WorkerID   *string    `json:"worker_id"`  // the worker that last started the transcode
	LastError  *string    `json:"last_error"` // the worker's last failure
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	EndReason  *string    `json:"end_reason"` // publisher_disconnected, publisher_timeout, kicked, edge_restarted, edge_shutdown, edge_lost, superseded, error
	EndDetail  *string    `json:"end_detail,omitempty"`
	KickReason *string    `json:"kick_reason,omitempty"` // a disconnect was requested and is pending
}

// Source is what the publisher sends, as the edge reports it. Zero values are
// unknown (the edge does not report frame rates).
type Source struct {
	VideoCodec      string  `json:"video_codec,omitempty"`
	VideoProfile    string  `json:"video_profile,omitempty"`
	Width           int     `json:"width,omitempty"`
	Height          int     `json:"height,omitempty"`
	FrameRate       float64 `json:"frame_rate,omitempty"`
	AudioCodec      string  `json:"audio_codec,omitempty"`
	AudioChannels   int     `json:"audio_channels,omitempty"`
	AudioSampleRate int     `json:"audio_sample_rate,omitempty"` // Hz
	BitrateKbps     int     `json:"bitrate_kbps,omitempty"`      // ingest bitrate over the last seconds
}

// Stream health statuses.
const (
	HealthHealthy  = "healthy"  // media flows and nothing needs changing
	HealthDegraded = "degraded" // media flows, with at least one warning
	HealthStarving = "starving" // the source sent nothing for 2 s or more
	HealthUnknown  = "unknown"  // not live, or no report from its worker for 15 s
)

// StreamHealth is a live stream's health as its worker measures it
// (docs/health.md). Zero values are not measured (yet).
type StreamHealth struct {
	Status   string          `json:"status"` // healthy, degraded, starving or unknown
	Source   HealthSource    `json:"source"`
	Output   HealthOutput    `json:"output"`
	Warnings []HealthWarning `json:"warnings"`
	// UpdatedAt is when the worker's last report arrived; null: none.
	UpdatedAt *time.Time `json:"updated_at"`
}

// HealthSource is the source as the worker receives it.
type HealthSource struct {
	FrameRate         float64 `json:"frame_rate"`          // frames per second
	KeyframeIntervalS float64 `json:"keyframe_interval_s"` // seconds between keyframes
	BitrateKbps       int     `json:"bitrate_kbps"`        // over the last second
	BFrames           bool    `json:"b_frames"`
	Audio             string  `json:"audio,omitempty"` // present or absent; omitted while not known
	Width             int     `json:"width"`
	Height            int     `json:"height"`
}

// HealthOutput is what the worker produces.
type HealthOutput struct {
	RealtimeFactor float64 `json:"realtime_factor"` // media seconds encoded per wall second
	DroppedFrames  uint64  `json:"dropped_frames"`
	SegmentsLate   uint64  `json:"segments_late"`
}

// HealthWarning is something to change, with what to change.
type HealthWarning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Worker is a transcoding worker of the fleet.
type Worker struct {
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	OriginURL string    `json:"origin_url"`
	Class     string    `json:"class"` // gpu or cpu
	Capacity  int       `json:"capacity"`
	Load      int       `json:"load"`
	State     string    `json:"state"` // up, lagging or gone
	Encoders  []string  `json:"encoders"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	LastSeen  time.Time `json:"last_seen"`
}

// PlaybackTokenCreate is the body of POST /api/v1/streams/{id}/playback-token.
type PlaybackTokenCreate struct {
	TTLSeconds *int   `json:"ttl_seconds,omitempty"` // default 3600
	IP         string `json:"ip,omitempty"`          // bind the token to one viewer address
}

// PlaybackToken is a signed playback token with the URLs that carry it.
type PlaybackToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	HLS       string    `json:"hls_url,omitempty"`
	DASH      string    `json:"dash_url,omitempty"`
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

// Recording is a stream's recording setting (docs/recording.md): Mode off or
// automatic (every session becomes an asset); DeleteAfterDays is how long a
// ready asset is kept (null: until deleted).
type Recording struct {
	Mode            string `json:"mode"`
	DeleteAfterDays *int   `json:"delete_after_days"`
}

// RecordingSetting is the recording of a create or update request: it
// replaces the stream's recording setting as a whole. Mode is required;
// an absent or null delete_after_days keeps assets until deleted.
type RecordingSetting struct {
	Mode            *string `json:"mode"`
	DeleteAfterDays *int    `json:"delete_after_days,omitempty"`
}

// StreamCreate is the body of POST /api/v1/streams. Absent fields take their
// defaults: profile "720p", outputs ["hls","dash"], hardware "auto",
// playback_policy "public", segment_duration 2, playlist_window_size 6,
// recording off, dvr_window_s 0, thumbnail_interval_s 10.
type StreamCreate struct {
	Name               string            `json:"name"`
	Profile            *string           `json:"profile,omitempty"` // profile name or id
	Outputs            []string          `json:"outputs,omitempty"`
	Hardware           *string           `json:"hardware,omitempty"`
	PlaybackPolicy     *string           `json:"playback_policy,omitempty"`
	SegmentDuration    *int              `json:"segment_duration,omitempty"`
	PlaylistWindowSize *int              `json:"playlist_window_size,omitempty"`
	Disabled           *bool             `json:"disabled,omitempty"`
	Recording          *RecordingSetting `json:"recording,omitempty"`
	DVRWindowS         *int              `json:"dvr_window_s,omitempty"`
	ThumbnailIntervalS *float64          `json:"thumbnail_interval_s,omitempty"`
}

// StreamUpdate is the body of PATCH /api/v1/streams/{id}: absent fields keep
// their value.
type StreamUpdate struct {
	Name               *string           `json:"name,omitempty"`
	Profile            *string           `json:"profile,omitempty"`
	Outputs            []string          `json:"outputs,omitempty"`
	Hardware           *string           `json:"hardware,omitempty"`
	PlaybackPolicy     *string           `json:"playback_policy,omitempty"`
	SegmentDuration    *int              `json:"segment_duration,omitempty"`
	PlaylistWindowSize *int              `json:"playlist_window_size,omitempty"`
	Disabled           *bool             `json:"disabled,omitempty"`
	Recording          *RecordingSetting `json:"recording,omitempty"`
	DVRWindowS         *int              `json:"dvr_window_s,omitempty"`
	ThumbnailIntervalS *float64          `json:"thumbnail_interval_s,omitempty"`
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

// Problem is an RFC 9457 problem document (application/problem+json), the
// one error format of the API, the router and the origin (pkg/problem).
type Problem = problem.Problem

// FieldError names one invalid field of a request, as a JSON path such as
// "renditions[1].width".
type FieldError = problem.FieldError

// ProblemContentType is the media type of a Problem.
const ProblemContentType = problem.ContentType

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string            `json:"status"` // "ok" or "unavailable"
	Checks map[string]string `json:"checks,omitempty"`
}

// Asset is a recording (docs/recording.md): one session of a stream.
type Asset struct {
	ID         uuid.UUID   `json:"id"`
	StreamID   uuid.UUID   `json:"stream_id"`
	SessionIDs []uuid.UUID `json:"session_ids"`
	// Status is recording, processing, ready, failed or deleted.
	Status        string           `json:"status"`
	DurationS     float64          `json:"duration_s"`
	SizeBytes     int64            `json:"size_bytes"`
	LostS         float64          `json:"lost_s"` // seconds the recording lacks (segments never stored)
	FailureReason *string          `json:"failure_reason"`
	Renditions    []AssetRendition `json:"renditions"`
	CreatedAt     time.Time        `json:"created_at"`
	EndedAt       *time.Time       `json:"ended_at"`
	ReadyAt       *time.Time       `json:"ready_at"`
	DeleteAfter   *time.Time       `json:"delete_after"` // when retention deletes it; null: never
	// Playback are the VOD URLs; set only while ready.
	Playback *AssetPlayback `json:"playback"`
	// Thumbnail is the poster's URL (or the nearest-thumbnail URL); "" when
	// the asset has neither.
	Thumbnail string `json:"thumbnail"`
}

// AssetRendition is one rendition of a ready asset.
type AssetRendition struct {
	Name      string `json:"name"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	Bandwidth int    `json:"bandwidth,omitempty"` // bits/s
	Codec     string `json:"codec"`
	Audio     bool   `json:"audio,omitempty"`
}

// AssetPlayback are a ready asset's VOD URLs through the router.
type AssetPlayback struct {
	HLS  string `json:"hls"`
	DASH string `json:"dash"`
	MP4  string `json:"mp4"`
}
