package job

import (
	"time"

	"github.com/google/uuid"
)

// Stream health reports are what a worker measures about the stream it runs
// (docs/health.md): POST {api}/internal/v1/sessions/{session_id}/health with
// "Authorization: Bearer <worker secret>" and a HealthReport as JSON body,
// every 2 s while a pipeline runs, whether media flows or not. The API
// evaluates them into the stream's health status and warnings.

// Audio states of HealthSource.Audio.
const (
	AudioPresent = "present"
	AudioAbsent  = "absent"
)

// HealthReport is the body of a health report.
type HealthReport struct {
	StreamID  uuid.UUID `json:"stream_id"`
	SessionID uuid.UUID `json:"session_id"`
	WorkerID  string    `json:"worker_id"`
	// Time is when the measurement was taken.
	Time time.Time `json:"time"`
	// RunningS is how long the current pipeline run has been running, in
	// seconds; VideoSeen whether any source video reached it yet (a run
	// without video is waiting for the source's first keyframe).
	RunningS  float64 `json:"running_s"`
	VideoSeen bool    `json:"video_seen"`
	// FirstVideoAfterS is how long after the run started its first video
	// arrived, in seconds (the edge sends video from a keyframe on, so a
	// long wait means a long keyframe interval); 0: none yet.
	FirstVideoAfterS float64 `json:"first_video_after_s"`
	// SourceResumedS is the time since the source's media came back after a
	// gap of a second or more, in seconds; 0: no gap in this run.
	SourceResumedS float64 `json:"source_resumed_s"`
	// SourceIdleS is the time since the last source buffer (video or audio)
	// arrived, in seconds, at Time; -1: none arrived yet in this run.
	SourceIdleS float64      `json:"source_idle_s"`
	Source      HealthSource `json:"source"`
	Output      HealthOutput `json:"output"`
}

// HealthSource is the source as the worker receives it. Zero values are not
// measured yet.
type HealthSource struct {
	FrameRate       float64 `json:"frame_rate"`        // frames per second over the last 2 s
	FrameRateJitter float64 `json:"frame_rate_jitter"` // stddev/mean of the frame intervals
	// KeyframeIntervalS is the media time between the last two keyframes in
	// seconds; when KeyframeIntervalAtLeast, the time since the last one (the
	// next is overdue).
	KeyframeIntervalS       float64 `json:"keyframe_interval_s"`
	KeyframeIntervalAtLeast bool    `json:"keyframe_interval_at_least,omitempty"`
	BitrateKbps             int     `json:"bitrate_kbps"`      // over the last second
	BitrateMeanKbps         int     `json:"bitrate_mean_kbps"` // over the last minute
	BFrames                 bool    `json:"b_frames"`
	Audio                   string  `json:"audio,omitempty"` // AudioPresent, AudioAbsent or "" (not known yet)
	Width                   int     `json:"width"`
	Height                  int     `json:"height"`
}

// HealthOutput is what the worker produces.
type HealthOutput struct {
	RealtimeFactor float64 `json:"realtime_factor"` // media seconds encoded per wall second
	DroppedFrames  uint64  `json:"dropped_frames"`
	SegmentsLate   uint64  `json:"segments_late"`
}

// HealthPath is the API path a HealthReport is posted to.
func HealthPath(sessionID uuid.UUID) string {
	return "/internal/v1/sessions/" + sessionID.String() + "/health"
}
