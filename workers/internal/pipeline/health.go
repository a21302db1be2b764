package pipeline

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/prometheus/client_golang/prometheus"
)

// Health is what a running pipeline measures about its source and its
// output (docs/health.md): the control plane turns it into a status and
// warnings. Zero values are "not measured yet".
type Health struct {
	// At is when the snapshot was taken.
	At time.Time
	// Started is when the run started; VideoSeen whether any video of the
	// source reached the decoder. A run that started long ago without video
	// is waiting for the source's first keyframe.
	Started   time.Time
	VideoSeen bool
	// FirstVideoAfter is how long after the start the first source video
	// arrived (the edge sends video from a keyframe on: a long wait means a
	// long keyframe interval). 0: none yet.
	FirstVideoAfter time.Duration
	// LastMediaAt is when the last source buffer (video or audio) arrived;
	// zero: none yet. ResumedAt is when media came back after a gap of a
	// second or more (zero: never).
	LastMediaAt time.Time
	ResumedAt   time.Time
	Source      SourceHealth
	Output      OutputHealth
}

// SourceHealth describes the source as the worker receives it, measured on
// the parsed (still compressed) video in front of the decoder and on the
// demuxed audio.
type SourceHealth struct {
	// FrameRate is frames per second from the presentation timestamps of
	// the last two seconds (robust to B-frame reordering).
	FrameRate float64
	// FrameRateJitter is the coefficient of variation (stddev/mean) of the
	// intervals between consecutive frames over the same window: ≈0 for a
	// steady source.
	FrameRateJitter float64
	// KeyframeInterval is the media time between the last two keyframes,
	// or, when longer, since the last one (KeyframeIntervalAtLeast: a lower
	// bound, the next keyframe is overdue).
	KeyframeInterval        time.Duration
	KeyframeIntervalAtLeast bool
	// BitrateKbps is the compressed source (video + audio) over the last
	// complete second; BitrateMeanKbps its mean over the last minute.
	BitrateKbps     int
	BitrateMeanKbps int
	// BFrames: frames arrive reordered (PTS ≠ DTS).
	BFrames bool
	// Audio is "present" (audio arrived within the last 3 s), "absent" or
	// "" (not known yet: the run has not settled its tracks).
	Audio         string
	Width, Height int
}

// OutputHealth describes what the worker produces.
type OutputHealth struct {
	// RealtimeFactor is media time encoded per wall second over the last
	// 5 s, not counting the time the encoder had nothing to encode (a
	// stalled source): <1 means the worker cannot keep up. 0: no output.
	RealtimeFactor float64
	// DroppedFrames counts frames the worker discarded beyond the ladder's
	// own frame-rate reductions (videorate dropping surplus frames in the
	// renditions that keep the source's rate).
	DroppedFrames uint64
	// SegmentsLate counts segments completed more than half a segment
	// duration later than their media time implies.
	SegmentsLate uint64
}

// Audio states.
const (
	AudioPresent = "present"
	AudioAbsent  = "absent"
)

const (
	frameWindow    = 2 * time.Second // frame-rate window (wall time)
	maxFrameWindow = 512             // frames kept at most in it
	outputWindow   = 5 * time.Second // realtime-factor window
	audioRecent    = 3 * time.Second // audio older than this is absent
	bitrateMinute  = 60              // 1 s buckets in the bitrate mean
	// idleGap: an output gap longer than the media it covers by more than
	// this is the encoder waiting for input, not the encoder being slow.
	idleGap = 250 * time.Millisecond
)

// healthMeter measures the source and the output of one run from pad
// probes and the appsink callbacks. Probes read timestamps, flags and sizes
// only: no media is copied or mapped. One lock, taken by every streaming
// thread for a few field updates and by Health; it is a leaf (nothing is
// called while it is held).
type healthMeter struct {
	segment time.Duration // the packager's segment duration (0: 2 s)
	started time.Time

	mu         sync.Mutex
	lastMedia  time.Time
	resumed    time.Time
	videoSeen  bool
	firstVideo time.Duration

	frames        []frameSample // the frame-rate window
	lastKeyPTS    time.Duration
	haveKey       bool
	keyInterval   time.Duration
	maxPTS        time.Duration
	bFrames       bool
	width, height int

	lastAudio time.Time

	bucketSec int64 // the second bytes are counted in now
	bucket    int64
	buckets   []int64 // completed seconds, oldest first, at most bitrateMinute

	out        []outSample // the realtime-factor window
	segAnchor  anchor      // wall and media time a segment boundary is measured from
	lastSegPTS time.Duration
	haveSeg    bool
	late       uint64
}

type frameSample struct {
	wall time.Time
	pts  time.Duration
}

type outSample struct {
	wall time.Time
	end  time.Duration // PTS + duration of the AU
}

type anchor struct {
	wall time.Time
	pts  time.Duration
	set  bool
}

func newHealthMeter(segment time.Duration, now time.Time) *healthMeter {
	if segment <= 0 {
		segment = 2 * time.Second
	}
	return &healthMeter{segment: segment, started: now}
}

// watchVideo measures the parsed source video on pad (the parser's source
// pad, in front of the decoder): timestamps, keyframe flags, sizes, caps.
func (h *healthMeter) watchVideo(pad *gst.Pad) {
	pad.AddProbe(gst.PadProbeTypeBuffer|gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		if info.Type()&gst.PadProbeTypeBuffer != 0 {
			buf := info.GetBuffer()
			if buf == nil {
				return gst.PadProbeOK
			}
			pts, dts := buf.PresentationTimestamp(), buf.DecodingTimestamp()
			h.video(time.Now(), clockDuration(pts), clockDuration(dts), !buf.HasFlags(gst.BufferFlagDeltaUnit), buf.GetSize())
			return gst.PadProbeOK
		}
		if ev := info.GetEvent(); ev != nil && ev.Type() == gst.EventTypeCaps {
			if caps := ev.ParseCaps(); caps != nil {
				s := caps.String()
				h.size(capsInt(reWidth, s), capsInt(reHeight, s))
			}
		}
		return gst.PadProbeOK
	})
}

// watchAudio counts the demuxed (compressed) audio on pad.
func (h *healthMeter) watchAudio(pad *gst.Pad) {
	pad.AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		if buf := info.GetBuffer(); buf != nil {
			h.audio(time.Now(), buf.GetSize())
		}
		return gst.PadProbeOK
	})
}

// clockDuration converts a buffer timestamp; -1 for none.
func clockDuration(t gst.ClockTime) time.Duration {
	if t == gst.ClockTimeNone {
		return -1
	}
	return time.Duration(t)
}

func (h *healthMeter) size(w, hgt int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w > 0 && hgt > 0 {
		h.width, h.height = w, hgt
	}
}

// video records one parsed source frame (pts, dts -1: unknown).
func (h *healthMeter) video(now time.Time, pts, dts time.Duration, key bool, size int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mediaLocked(now)
	if !h.videoSeen {
		h.videoSeen, h.firstVideo = true, max(now.Sub(h.started), time.Nanosecond)
	}
	h.countBytesLocked(now, size)
	if pts < 0 {
		return
	}
	if dts >= 0 && dts != pts {
		h.bFrames = true
	}
	h.frames = append(h.frames, frameSample{wall: now, pts: pts})
	h.trimFramesLocked(now)
	if pts > h.maxPTS {
		h.maxPTS = pts
	}
	if key {
		if h.haveKey && pts > h.lastKeyPTS {
			h.keyInterval = pts - h.lastKeyPTS
		}
		h.lastKeyPTS, h.haveKey = pts, true
	}
}

func (h *healthMeter) trimFramesLocked(now time.Time) {
	i := 0
	for i < len(h.frames) && (now.Sub(h.frames[i].wall) > frameWindow || len(h.frames)-i > maxFrameWindow) {
		i++
	}
	if i > 0 {
		h.frames = append(h.frames[:0], h.frames[i:]...)
	}
}

func (h *healthMeter) audio(now time.Time, size int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mediaLocked(now)
	h.lastAudio = now
	h.countBytesLocked(now, size)
}

// resumeGap: media arriving after a gap this long resumes the source.
const resumeGap = time.Second

func (h *healthMeter) mediaLocked(now time.Time) {
	if !h.lastMedia.IsZero() && now.Sub(h.lastMedia) >= resumeGap {
		h.resumed = now
	}
	h.lastMedia = now
}

// countBytesLocked adds size to the current second's bucket, closing the
// buckets of the seconds that went by.
func (h *healthMeter) countBytesLocked(now time.Time, size int64) {
	h.advanceLocked(now)
	h.bucket += size
}

func (h *healthMeter) advanceLocked(now time.Time) {
	sec := now.Unix()
	if h.bucketSec == 0 {
		h.bucketSec = sec
		return
	}
	for h.bucketSec < sec {
		h.buckets = append(h.buckets, h.bucket)
		if len(h.buckets) > bitrateMinute {
			h.buckets = h.buckets[1:]
		}
		h.bucket = 0
		h.bucketSec++
		if sec-h.bucketSec > bitrateMinute { // a long gap: the rest are zeros
			h.bucketSec = sec - bitrateMinute
		}
	}
}

// output records one access unit of the first rendition as it is handed
// to the packager.
func (h *healthMeter) output(now time.Time, pts, dur time.Duration, key bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out = append(h.out, outSample{wall: now, end: pts + dur})
	i := 0
	for i < len(h.out)-1 && now.Sub(h.out[i].wall) > outputWindow {
		i++
	}
	if i > 0 {
		h.out = append(h.out[:0], h.out[i:]...)
	}
	if !key {
		return
	}
	// A keyframe at least a segment after the last boundary completes a
	// segment in the packager. It is late when it comes out more than half
	// a segment after the wall time its media time implies, counted from
	// an anchor that is reset at every late (or early) boundary, so one
	// stall is counted once.
	if !h.haveSeg {
		h.haveSeg, h.lastSegPTS = true, pts
		h.segAnchor = anchor{wall: now, pts: pts, set: true}
		return
	}
	if pts-h.lastSegPTS+time.Millisecond < h.segment {
		return
	}
	h.lastSegPTS = pts
	expected := h.segAnchor.wall.Add(pts - h.segAnchor.pts)
	switch lag := now.Sub(expected); {
	case lag > h.segment/2:
		h.late++
		h.segAnchor = anchor{wall: now, pts: pts, set: true}
	case lag < 0:
		h.segAnchor = anchor{wall: now, pts: pts, set: true}
	}
}

// snapshot computes the measurements as of now. dropped and audioSettled
// come from the other parts (the renditions' videorate counters, the
// track gate).
func (h *healthMeter) snapshot(now time.Time, dropped uint64, audioSettled bool) Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	hl := Health{At: now, Started: h.started, VideoSeen: h.videoSeen, FirstVideoAfter: h.firstVideo,
		LastMediaAt: h.lastMedia, ResumedAt: h.resumed}
	h.trimFramesLocked(now)
	s := &hl.Source
	s.FrameRate, s.FrameRateJitter = frameRate(h.frames)
	if h.haveKey {
		since := h.maxPTS - h.lastKeyPTS
		s.KeyframeInterval = h.keyInterval
		if since > h.keyInterval && (h.keyInterval > 0 || since > h.segment) {
			s.KeyframeInterval, s.KeyframeIntervalAtLeast = since, true
		}
	}
	h.advanceLocked(now)
	if n := len(h.buckets); n > 0 {
		s.BitrateKbps = int(h.buckets[n-1] * 8 / 1000)
		var sum int64
		for _, b := range h.buckets {
			sum += b
		}
		s.BitrateMeanKbps = int(sum * 8 / 1000 / int64(n))
	}
	s.BFrames, s.Width, s.Height = h.bFrames, h.width, h.height
	switch {
	case !h.lastAudio.IsZero() && now.Sub(h.lastAudio) <= audioRecent:
		s.Audio = AudioPresent
	case audioSettled || (h.videoSeen && now.Sub(h.started) > audioWait+audioRecent):
		s.Audio = AudioAbsent
	}
	hl.Output = OutputHealth{RealtimeFactor: realtimeFactor(h.out, now), DroppedFrames: dropped, SegmentsLate: h.late}
	return hl
}

// reorderEdge is how many frames frameRate leaves out at each end of its
// window once the window is sorted by presentation time. The window is a run
// of frames in decode order; with B-frames, the frames at its ends lack
// neighbours in display order (a B-frame's successor in display order came
// before the window, or a reference frame's predecessor comes after it), and
// those holes would read as a slower, jittery rate. Encoders reorder by at
// most a few frames (x264's default is 3 B-frames).
const reorderEdge = 4

// frameRate is the rate and the jitter of the frames of a window: from
// their sorted presentation timestamps, so reordered (B-)frames count in
// display order, without the ends a reordering leaves holes in.
func frameRate(frames []frameSample) (fps, jitter float64) {
	if len(frames) < 3 {
		return 0, 0
	}
	pts := make([]time.Duration, len(frames))
	for i, f := range frames {
		pts[i] = f.pts
	}
	slices.Sort(pts)
	if len(pts) > 4*reorderEdge {
		pts = pts[reorderEdge : len(pts)-reorderEdge]
	}
	span := pts[len(pts)-1] - pts[0]
	if span <= 0 {
		return 0, 0
	}
	n := float64(len(pts) - 1)
	mean := span.Seconds() / n
	var ss float64
	for i := 1; i < len(pts); i++ {
		d := (pts[i] - pts[i-1]).Seconds() - mean
		ss += d * d
	}
	return n / span.Seconds(), math.Sqrt(ss/n) / mean
}

// realtimeFactor is the media time the samples cover per wall second, not
// counting gaps where the encoder waited for input.
func realtimeFactor(out []outSample, now time.Time) float64 {
	if len(out) < 2 || now.Sub(out[len(out)-1].wall) > outputWindow {
		return 0
	}
	var media, wall time.Duration
	for i := 1; i < len(out); i++ {
		dm, dw := out[i].end-out[i-1].end, out[i].wall.Sub(out[i-1].wall)
		if dm < 0 {
			continue
		}
		if dw > dm+idleGap {
			dw = dm // idle: the source had nothing for the encoder
		}
		media += dm
		wall += dw
	}
	if wall <= 0 {
		return 0
	}
	return media.Seconds() / wall.Seconds()
}

// Health returns the pipeline's health measurements now. It may be called
// at any time from any goroutine: zero measurements before the run
// started, the last ones (without dropped frames) after it ended.
func (p *Pipeline) Health() Health {
	return p.health.snapshot(time.Now(), p.renditions.droppedExcess(), p.gate.isOpen())
}

// healthDescs are the per-stream health series of Metrics (names are a
// contract with deploy/'s dashboards and alert rules).
type healthDescs struct {
	rtf, fps, kbps, keyframe, dropped, late *prometheus.Desc
}

func newHealthDescs() healthDescs {
	l := []string{"stream_id"}
	return healthDescs{
		rtf:      prometheus.NewDesc("dionysia_worker_stream_realtime_factor", "Media seconds encoded per wall second over the last 5 s, idle time excluded (<1: the worker cannot keep up).", l, nil),
		fps:      prometheus.NewDesc("dionysia_worker_stream_source_frame_rate", "The source's frame rate measured from its timestamps over the last 2 s.", l, nil),
		kbps:     prometheus.NewDesc("dionysia_worker_stream_source_bitrate_kbps", "The compressed source's bitrate over the last second, in kbit/s.", l, nil),
		keyframe: prometheus.NewDesc("dionysia_worker_stream_keyframe_interval_seconds", "Media time between the source's last two keyframes (or since the last, when longer).", l, nil),
		dropped:  prometheus.NewDesc("dionysia_worker_stream_dropped_frames_total", "Frames the worker dropped beyond the ladder's frame-rate reductions.", l, nil),
		late:     prometheus.NewDesc("dionysia_worker_stream_segments_late_total", "Segments completed more than half a segment later than their media time implies.", l, nil),
	}
}

func (d healthDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.rtf, d.fps, d.kbps, d.keyframe, d.dropped, d.late} {
		ch <- x
	}
}

func (d healthDescs) collect(ch chan<- prometheus.Metric, streamID string, h Health) {
	gauge := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, streamID)
	}
	gauge(d.rtf, h.Output.RealtimeFactor)
	gauge(d.fps, h.Source.FrameRate)
	gauge(d.kbps, float64(h.Source.BitrateKbps))
	gauge(d.keyframe, h.Source.KeyframeInterval.Seconds())
	ch <- prometheus.MustNewConstMetric(d.dropped, prometheus.CounterValue, float64(h.Output.DroppedFrames), streamID)
	ch <- prometheus.MustNewConstMetric(d.late, prometheus.CounterValue, float64(h.Output.SegmentsLate), streamID)
}
