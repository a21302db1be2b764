// Package health turns what a worker measures about a live stream
// (job.HealthReport) into the stream's health: a status and warnings that
// say what to change (docs/health.md). Evaluate is a pure function; the
// Recorder stores each report on its session and records a
// stream.health_changed event when the status changes; the Collector
// exports the status to Prometheus.
package health

import (
	"fmt"
	"math"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
)

// Warning codes (docs/health.md says what each means and what to do).
const (
	CodeSourceStalled       = "source_stalled"
	CodeWaitingForKeyframe  = "waiting_for_keyframe"
	CodeKeyframeTooLong     = "keyframe_interval_too_long"
	CodeFrameRateUnstable   = "frame_rate_unstable"
	CodeBitrateDrop         = "bitrate_drop"
	CodeAudioMissing        = "audio_missing"
	CodeSlowerThanRealtime  = "transcode_slower_than_realtime"
	defaultSegmentDurationS = 2
)

// Thresholds of the evaluation.
const (
	// StaleAfter: a report older than this says nothing about now.
	StaleAfter = 15 * time.Second
	// StarvingAfter: no source media for this long is starving.
	StarvingAfter = 2 * time.Second
	// unstableJitter: frame intervals varying more than this (stddev/mean)
	// are an unstable frame rate.
	unstableJitter = 0.25
	// bitrateDropRatio: a bitrate below this share of its 1-min mean is a drop.
	bitrateDropRatio = 0.5
	// slowFactor: encoding below this share of real time falls behind.
	slowFactor = 0.95
	// settle: measurements that need a few seconds of media (frame rate,
	// encoding speed) are judged only after the run has been up this long.
	settle = 5 * time.Second
	// pausing: a source idle this long is not judged on its bitrate or audio.
	pausing = 500 * time.Millisecond
	// joinSlack is what a worker's join may take before the edge would
	// send it video (connection, handshake): a longer wait for the first
	// video is the source's keyframe interval (the edge sends video from a
	// keyframe on).
	joinSlack = 1.5
	// resumeSettle: the seconds after a stall are not judged on their
	// bitrate (the last complete second still holds the gap).
	resumeSettle = 3.0
	// keyframeSlack: keyframe intervals up to the segment duration plus
	// this are fine (timestamps are rounded to milliseconds).
	keyframeSlack = 0.1
)

// Input is what Evaluate judges.
type Input struct {
	// Report is the worker's latest report; nil: none yet.
	Report *job.HealthReport
	// ReceivedAt is when it arrived; Now the time of the evaluation.
	ReceivedAt time.Time
	Now        time.Time
	// Live: the stream has an open session. An idle stream is unknown.
	Live bool
	// SegmentDurationS is the stream's segment duration in seconds (0: 2).
	SegmentDurationS int
}

// Evaluate returns the stream's health: unknown when not live or without a
// report in the last StaleAfter; starving when the source sent nothing for
// StarvingAfter; degraded with any warning; healthy otherwise.
func Evaluate(in Input) apiv1.StreamHealth {
	h := apiv1.StreamHealth{Status: apiv1.HealthUnknown, Warnings: []apiv1.HealthWarning{}}
	rep := in.Report
	if rep == nil {
		return h
	}
	at := in.ReceivedAt.UTC()
	h.UpdatedAt = &at
	h.Source = apiv1.HealthSource{
		FrameRate: round(rep.Source.FrameRate, 2), KeyframeIntervalS: round(rep.Source.KeyframeIntervalS, 2),
		BitrateKbps: rep.Source.BitrateKbps, BFrames: rep.Source.BFrames, Audio: rep.Source.Audio,
		Width: rep.Source.Width, Height: rep.Source.Height,
	}
	h.Output = apiv1.HealthOutput{RealtimeFactor: round(rep.Output.RealtimeFactor, 2),
		DroppedFrames: rep.Output.DroppedFrames, SegmentsLate: rep.Output.SegmentsLate}
	if !in.Live || in.Now.Sub(in.ReceivedAt) > StaleAfter {
		return h
	}
	h.Warnings = warnings(rep, in.SegmentDurationS)
	switch {
	case starving(rep):
		h.Status = apiv1.HealthStarving
	case len(h.Warnings) > 0:
		h.Status = apiv1.HealthDegraded
	case !rep.VideoSeen, rep.Source.FrameRate == 0:
		// Starting: no video yet, or video but no measurement window
		// complete (the first report after the first keyframe).
		h.Status = apiv1.HealthUnknown
	default:
		h.Status = apiv1.HealthHealthy
	}
	return h
}

// starving: media flowed, then none for StarvingAfter. A run that has seen
// no video yet is waiting for the source's first keyframe (the edge sends
// video from a keyframe on): that is a slow start, not a stall.
func starving(rep *job.HealthReport) bool {
	return rep.VideoSeen && rep.SourceIdleS >= StarvingAfter.Seconds()
}

func warnings(rep *job.HealthReport, segmentS int) []apiv1.HealthWarning {
	if segmentS <= 0 {
		segmentS = defaultSegmentDurationS
	}
	out := []apiv1.HealthWarning{}
	add := func(code, format string, args ...any) {
		out = append(out, apiv1.HealthWarning{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	src := rep.Source
	stalled := starving(rep)
	settled := rep.RunningS >= settle.Seconds() && rep.VideoSeen
	if stalled {
		add(CodeSourceStalled, "the source has sent nothing for %.1f s although it is still connected: "+
			"check the encoder (is it frozen or overloaded?) and its upload", rep.SourceIdleS)
	}
	// Longer than a source with keyframes every segment takes.
	limit := float64(segmentS) + keyframeSlack
	if !rep.VideoSeen && rep.RunningS-joinSlack > limit {
		add(CodeWaitingForKeyframe, "the worker has received no video in %.1f s: it waits for the source's first "+
			"keyframe and nothing plays until it arrives; set the encoder's keyframe interval to %d s (if the encoder "+
			"sends nothing at all, check it)", rep.RunningS, segmentS)
	}
	waited := rep.FirstVideoAfterS
	if !rep.VideoSeen {
		waited = rep.RunningS
	}
	var what string
	switch ki := src.KeyframeIntervalS; {
	case ki > limit && src.KeyframeIntervalAtLeast:
		what = fmt.Sprintf("the source has sent no keyframe for %.1f s", ki)
	case ki > limit:
		what = fmt.Sprintf("the source sends a keyframe every %.1f s", ki)
	case ki == 0 && waited-joinSlack > limit:
		// Not measured yet, but the wait for the first keyframe says it.
		what = fmt.Sprintf("the worker waited %.1f s for the source's first keyframe, so it sends one every %.1f s or more",
			waited, waited-joinSlack)
	}
	if what != "" {
		add(CodeKeyframeTooLong, "%s; segments are %d s long and latency grows (a player or worker joining waits "+
			"for a keyframe): set the encoder's keyframe interval to %d s", what, segmentS, segmentS)
	}
	if settled && !stalled && src.FrameRate > 0 && src.FrameRateJitter > unstableJitter {
		add(CodeFrameRateUnstable, "the source's frame rate is unstable (%.1f fps, frame intervals vary by %.0f%%) and "+
			"playback stutters: set a constant frame rate in the encoder and check its CPU load and upload",
			src.FrameRate, src.FrameRateJitter*100)
	}
	// A source that has paused for half a second is a stall starting, not
	// a lower bitrate or a lost audio track.
	flowing := !stalled && rep.SourceIdleS < pausing.Seconds()
	resuming := rep.SourceResumedS > 0 && rep.SourceResumedS < resumeSettle
	if flowing && !resuming && src.BitrateMeanKbps > 0 && float64(src.BitrateKbps) < bitrateDropRatio*float64(src.BitrateMeanKbps) {
		add(CodeBitrateDrop, "the source's bitrate fell to %d kbps, below half its 1-minute mean of %d kbps: the encoder's "+
			"upload or CPU cannot keep up; check its network or lower its bitrate", src.BitrateKbps, src.BitrateMeanKbps)
	}
	if src.Audio == job.AudioAbsent && flowing {
		add(CodeAudioMissing, "the source sends no audio and viewers hear nothing: enable an audio track in the encoder")
	}
	if f := rep.Output.RealtimeFactor; settled && !stalled && f > 0 && f < slowFactor {
		add(CodeSlowerThanRealtime, "the worker encodes at %.1f× real time and falls behind: choose a lighter profile "+
			"or a GPU worker", f)
	}
	return out
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
