package job

import (
	"time"

	"github.com/google/uuid"
)

// Recording (docs/recording.md): a session of a stream that records has one
// asset. The worker that holds the stream uploads each CMAF file to the
// configured store (pkg/storage) as soon as the packager completed it, then
// registers it with the API: POST {api}/internal/v1/sessions/{session_id}/recording
// with "Authorization: Bearer <worker secret>" and a RecordingReport as JSON
// body. The API accepts a report only while the reporting lease (Token,
// Nonce) is the stream's current owner in the ownership registry, so a
// fenced-out worker can never add to an asset: an object it uploaded anyway
// is never listed and is deleted with the asset.
//
// Answers: 200 with RecordingAccepted; 409 problem+json when the lease is not
// the current owner (the worker stops recording: it is losing the stream), or
// the asset is no longer recording; 404 when session or asset is unknown;
// 400 for a malformed report.

// RecordingPath is the API path a RecordingReport is posted to.
func RecordingPath(sessionID uuid.UUID) string {
	return "/internal/v1/sessions/" + sessionID.String() + "/recording"
}

// Recording is the part of a Transcode that says the session records.
type Recording struct {
	AssetID uuid.UUID `json:"asset_id"`
}

// Kinds of RecordedObject.
const (
	ObjectInit      = "init"      // a CMAF header (init segment)
	ObjectSegment   = "segment"   // a CMAF media segment
	ObjectThumbnail = "thumbnail" // a JPEG still of the top rendition's source frame
)

// AssetPrefix is the key prefix of every object of an asset:
// "assets/{asset_id}/". Object keys inside it, written by workers:
//
//	{rendition}/init-{token}-{run}.mp4   CMAF header of one packager run
//	{rendition}/{token}-{number}.m4s      CMAF segment
//	thumbs/{unix_ms}.jpg                  thumbnail taken at that wall-clock time
//
// where token is the worker's lease token and run the packager's run index on
// that worker, so two workers (an old owner that has not noticed it was
// fenced out, and the new one) can never overwrite each other's objects. The
// API writes the VOD files at the top: index.m3u8, {rendition}/index.m3u8,
// manifest.mpd, download.mp4, poster.jpg.
func AssetPrefix(assetID uuid.UUID) string { return "assets/" + assetID.String() + "/" }

// RecordingReport is the body of a recording report. A worker sends one per
// completed upload batch (usually one segment of every track), in upload
// order.
type RecordingReport struct {
	StreamID  uuid.UUID `json:"stream_id"`
	SessionID uuid.UUID `json:"session_id"`
	AssetID   uuid.UUID `json:"asset_id"`
	WorkerID  string    `json:"worker_id"`
	// Token and Nonce identify the worker's ownership lease (ownership.Lease).
	Token int64  `json:"token"`
	Nonce string `json:"nonce"`

	Objects []RecordedObject `json:"objects,omitempty"`
	// Lost lists segments that were produced but will never be uploaded
	// (the upload queue overflowed, or retries ran out).
	Lost []LostSegment `json:"lost,omitempty"`
	// Final says this worker finished the session (its source ended or a
	// stop was requested) and has reported everything it ever will.
	Final bool `json:"final,omitempty"`
}

// RecordedObject is one object the worker has stored.
type RecordedObject struct {
	Kind      string `json:"kind"`                // ObjectInit, ObjectSegment or ObjectThumbnail
	Rendition string `json:"rendition,omitempty"` // "720p", "audio"; empty for thumbnails
	Key       string `json:"key"`                 // full key, inside AssetPrefix
	Size      int64  `json:"size"`

	// Segments and inits: the packager run (on this worker) they belong to.
	Run int `json:"run"`
	// Segments: the segment number (the same number in every track for the
	// same time span), the key of its init, and its time span. Start is the
	// wall-clock time of its first sample as the live playlists give it
	// (EXT-X-PROGRAM-DATE-TIME); MediaStart its start in the track's
	// timescale (the tfdt baseMediaDecodeTime).
	Number     uint64    `json:"number,omitempty"`
	Init       string    `json:"init,omitempty"`
	Start      time.Time `json:"start,omitzero"`
	DurationS  float64   `json:"duration_s,omitempty"`
	MediaStart uint64    `json:"media_start,omitempty"`

	// Inits: the track, for the VOD manifests.
	Track *RecordedTrack `json:"track,omitempty"`

	// Thumbnails: when the frame was shown (wall clock); Start is used.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// RecordedTrack describes one track of a run, as the live manifests do.
type RecordedTrack struct {
	Audio      bool   `json:"audio,omitempty"`
	Codec      string `json:"codec"` // RFC 6381, e.g. avc1.64001f, mp4a.40.2
	Timescale  uint32 `json:"timescale"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	FrameRate  string `json:"frame_rate,omitempty"` // e.g. "30" or "30000/1001"
	Bandwidth  int    `json:"bandwidth,omitempty"`  // bits/s, peak as measured or configured
	Channels   int    `json:"channels,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
}

// LostSegment is a segment a recording will not have.
type LostSegment struct {
	Rendition string    `json:"rendition"`
	Number    uint64    `json:"number"`
	Start     time.Time `json:"start,omitzero"`
	DurationS float64   `json:"duration_s"`
	Reason    string    `json:"reason"`
}

// RecordingAccepted is the API's answer to a report.
type RecordingAccepted struct {
	Accepted int `json:"accepted"`
}

// RecordingHistory answers GET RecordingPath(session)?window_s=N (worker
// secret): the segments of the session's asset that end within the last N
// seconds of what it recorded, by pipeline run of the workers that produced
// them, oldest run first. A worker that takes over a recording stream
// resumes its DVR window from it (the older segments come from the store).
// 404 when the session is unknown or records no asset; 400 for a missing or
// out-of-range window_s (1 to MaxDVRWindowS).
type RecordingHistory struct {
	AssetID uuid.UUID     `json:"asset_id"`
	Runs    []RecordedRun `json:"runs"`
}

// RecordedRun is one packager run of one worker: each track's CMAF header
// and segments.
type RecordedRun struct {
	Tracks []RecordedRunTrack `json:"tracks"`
}

// RecordedRunTrack is one track of a RecordedRun. Segments are in number
// order.
type RecordedRunTrack struct {
	Rendition string            `json:"rendition"`
	InitKey   string            `json:"init_key"`
	Track     RecordedTrack     `json:"track"`
	Segments  []RecordedSegment `json:"segments"`
}

// RecordedSegment is a segment of a RecordedRunTrack (see RecordedObject).
type RecordedSegment struct {
	Key        string    `json:"key"`
	Number     uint64    `json:"number"`
	Start      time.Time `json:"start"`
	MediaStart uint64    `json:"media_start"`
	DurationS  float64   `json:"duration_s"`
	Size       int64     `json:"size"`
}
