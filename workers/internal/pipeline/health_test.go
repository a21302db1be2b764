package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/workers/internal/gstinit"
)

func TestFrameRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	steady := func(n int, step time.Duration) []frameSample {
		var fs []frameSample
		for i := range n {
			fs = append(fs, frameSample{wall: t0, pts: time.Duration(i) * step})
		}
		return fs
	}
	reordered := steady(60, time.Second/30)
	for i := 1; i+1 < len(reordered); i += 3 { // I P B B order: swap pairs
		reordered[i], reordered[i+1] = reordered[i+1], reordered[i]
	}
	// A window cut from a stream with 2 B-frames (decode order I0 P3 B1 B2
	// P6 B4 B5 ...) at arbitrary points: display order has holes at its ends.
	var bframes []frameSample
	for i := range 120 {
		n := i
		if i > 0 {
			switch j := (i + 2) / 3; i % 3 {
			case 1:
				n = 3 * j
			case 2:
				n = 3*j - 2
			default:
				n = 3*j - 1
			}
		}
		bframes = append(bframes, frameSample{wall: t0, pts: time.Duration(n) * time.Second / 30})
	}
	cut := bframes[2:59]
	uneven := steady(60, time.Second/30)
	for i := range uneven {
		if i%2 == 1 {
			uneven[i].pts += 25 * time.Millisecond // 58 ms, 8 ms, 58 ms...
		}
	}
	for _, tc := range []struct {
		name       string
		frames     []frameSample
		fps        float64
		jitterOver float64
		jitterMax  float64
	}{
		{"none", nil, 0, -1, 0},
		{"30 fps", steady(60, time.Second/30), 30, -1, 0.01},
		{"25 fps", steady(50, 40*time.Millisecond), 25, -1, 0.01},
		{"30 fps with B-frames", reordered, 30, -1, 0.01},
		{"30 fps, a window cut through B-frame groups", cut, 30, -1, 0.01},
		{"uneven", uneven, 30, 0.5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fps, jitter := frameRate(tc.frames)
			require.InDelta(t, tc.fps, fps, 0.5)
			require.Greater(t, jitter, tc.jitterOver)
			require.LessOrEqual(t, jitter, tc.jitterMax)
		})
	}
}

func TestRealtimeFactor(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// frames of 1/30 s of media coming out every wallStep, with a pause
	// of gap after the 30th.
	series := func(n int, wallStep, gap time.Duration) ([]outSample, time.Time) {
		var out []outSample
		wall := t0
		for i := range n {
			if i == 30 {
				wall = wall.Add(gap)
			}
			out = append(out, outSample{wall: wall, end: time.Duration(i+1) * time.Second / 30})
			wall = wall.Add(wallStep)
		}
		return out, wall
	}
	realTime, end1 := series(90, time.Second/30, 0)
	slow, end2 := series(90, time.Second/24, 0) // 0.8×
	stalled, end3 := series(90, time.Second/30, 2*time.Second)
	for _, tc := range []struct {
		name string
		out  []outSample
		now  time.Time
		want float64
	}{
		{"real time", realTime, end1, 1},
		{"0.8x", slow, end2, 0.8},
		{"a source stall is not slowness", stalled, end3, 1},
		{"nothing for a window", realTime, end1.Add(outputWindow + time.Second), 0},
		{"one frame", realTime[:1], end1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, realtimeFactor(tc.out, tc.now), 0.02)
		})
	}
}

// TestHealthMeter feeds the meter a synthetic 30 fps source with a keyframe
// every 4 s, 3 s of stall in the middle, and checks what it reports.
func TestHealthMeter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	h := newHealthMeter(2*time.Second, t0)
	wall := t0
	frame := time.Second / 30
	for i := range 30 * 12 {
		pts := time.Duration(i) * frame
		if i == 30*6 {
			wall = wall.Add(3 * time.Second) // the source stalls for 3 s
		}
		key := i%(30*4) == 0
		h.video(wall, pts, pts-frame, key, 5000) // 5000 B/frame = 1200 kbps
		h.audio(wall, 100)                       // +24 kbps
		h.output(wall, pts, frame, i%60 == 0)    // an output keyframe every 2 s
		wall = wall.Add(frame)
	}
	got := h.snapshot(wall, 7, true)
	t.Logf("%+v", got)
	require.InDelta(t, 30, got.Source.FrameRate, 0.5)
	require.Less(t, got.Source.FrameRateJitter, 0.01)
	require.InDelta(t, 4, got.Source.KeyframeInterval.Seconds(), 0.001)
	require.False(t, got.Source.KeyframeIntervalAtLeast)
	require.True(t, got.Source.BFrames)
	require.Equal(t, AudioPresent, got.Source.Audio)
	require.InDelta(t, 1224, got.Source.BitrateKbps, 60)
	require.Equal(t, uint64(7), got.Output.DroppedFrames)
	require.Equal(t, uint64(1), got.Output.SegmentsLate, "the segment across the stall")
	require.InDelta(t, 1, got.Output.RealtimeFactor, 0.05)
	require.Equal(t, wall.Add(-frame), got.LastMediaAt)
	require.Equal(t, t0.Add(3*time.Second+180*frame), got.ResumedAt, "media came back after the stall")
	require.Positive(t, got.FirstVideoAfter)

	// 6 s later, nothing more arrived: the keyframe is overdue, the
	// bitrate fell to 0 below its mean, the audio is gone.
	later := h.snapshot(wall.Add(6*time.Second), 7, true)
	require.Zero(t, later.Source.FrameRate)
	require.Zero(t, later.Source.BitrateKbps)
	require.Positive(t, later.Source.BitrateMeanKbps)
	require.Equal(t, AudioAbsent, later.Source.Audio)
	require.Zero(t, later.Output.RealtimeFactor)
}

// TestHealthLive publishes real sources to a real edge and reads the
// measurements of the pipeline that transcodes them.
func TestHealthLive(t *testing.T) {
	e := startMediaMTX(t)
	// 16 s clips at 30 fps, looped: with -g 240 every keyframe is 8 s
	// from the last one, across the loop too.
	withAudio := generate(t, "health-g60-audio.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=16",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=16",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
		"-pix_fmt", "yuv420p", "-b:v", "800k", "-c:a", "aac", "-ac", "2")
	longGOP := generate(t, "health-g240-noaudio.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=16",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "240", "-keyint_min", "240", "-sc_threshold", "0",
		"-pix_fmt", "yuv420p", "-b:v", "800k")
	// 20 s with a keyframe every 10 s, and audio (issue 17: the reader gets
	// audio at once and video only from the next keyframe).
	longGOPAudio := generate(t, "health-g300-audio.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=20",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "300", "-keyint_min", "300", "-sc_threshold", "0",
		"-pix_fmt", "yuv420p", "-b:v", "800k", "-c:a", "aac", "-ac", "2")
	publish(t, e, withAudio, "live/health-audio")
	publish(t, e, longGOP, "live/health-longgop")
	publish(t, e, longGOPAudio, "live/health-longgop-audio")
	for _, tc := range []struct {
		name, path string
		keyframe   time.Duration
		audio      string
		bFrames    bool
	}{
		{"2 s keyframes, audio, B-frames", "live/health-audio", 2 * time.Second, AudioPresent, true},
		{"8 s keyframes, no audio", "live/health-longgop", 8 * time.Second, AudioAbsent, false},
		{"10 s keyframes, audio", "live/health-longgop-audio", 10 * time.Second, AudioPresent, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lad := builtin(t, ladder.Builtin720p)
			lad.Renditions = lad.Renditions[len(lad.Renditions)-1:] // 360p: the CPU is shared
			metrics, err := NewMetrics(prometheus.NewRegistry())
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := New(Config{StreamID: "health", Ladder: lad, SegmentDuration: 2 * time.Second, Logger: testLogger(t),
				Source: job.Source{URL: e.rtmpURL(tc.path), User: "reader", Password: "secret"}, Metrics: metrics})
			require.NoError(t, err)
			require.Zero(t, p.Health().Source.FrameRate, "before the run")
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, newRecordingSink(t)) }()
			start := time.Now()
			var h Health
			require.Eventually(t, func() bool {
				select {
				case err := <-done:
					t.Fatalf("run ended: %v", err)
				default:
				}
				h = p.Health()
				s := h.Source
				return !s.KeyframeIntervalAtLeast && s.KeyframeInterval > 0 && s.Audio != "" &&
					h.Output.RealtimeFactor > 0 && s.BitrateKbps > 0
			}, 2*time.Minute, 100*time.Millisecond)
			t.Logf("measured after %s: %+v", time.Since(start).Round(time.Millisecond), h)
			s := h.Source
			require.InDelta(t, 30, s.FrameRate, 1)
			require.InDelta(t, tc.keyframe.Seconds(), s.KeyframeInterval.Seconds(), 0.05)
			require.Equal(t, tc.audio, s.Audio)
			require.Equal(t, tc.bFrames, s.BFrames)
			require.Equal(t, [2]int{640, 360}, [2]int{s.Width, s.Height})
			require.InDelta(t, 850, s.BitrateKbps, 600, "about 800 kbps of video (+ audio)")
			require.WithinDuration(t, time.Now(), h.LastMediaAt, 2*time.Second)
			require.Equal(t, 1, testutil.CollectAndCount(metrics, "dionysia_worker_stream_source_frame_rate"))
			require.Equal(t, 1, testutil.CollectAndCount(metrics, "dionysia_worker_stream_keyframe_interval_seconds"))
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
			require.Zero(t, testutil.CollectAndCount(metrics, "dionysia_worker_stream_source_frame_rate"), "series gone with the run")
		})
	}
}

// BenchmarkHealthMeter is the Go side of the measurement per source frame
// (the probe's cgo call comes on top), and of one snapshot.
func BenchmarkHealthMeter(b *testing.B) {
	t0 := time.Now()
	h := newHealthMeter(2*time.Second, t0)
	frame := time.Second / 30
	b.Run("frame", func(b *testing.B) {
		for i := range b.N {
			pts := time.Duration(i) * frame
			h.video(t0.Add(pts), pts, pts, i%60 == 0, 5000)
		}
	})
	b.Run("snapshot", func(b *testing.B) {
		for range b.N {
			h.snapshot(t0.Add(time.Duration(b.N)*frame), 0, true)
		}
	})
}

// BenchmarkVideoProbe is the whole cost of the video probe per buffer on a
// real GStreamer pipeline (fakesrc ! fakesink), the cgo callback included:
// compare with "none".
func BenchmarkVideoProbe(b *testing.B) {
	gstinit.Init()
	for _, probe := range []bool{false, true} {
		name := map[bool]string{false: "none", true: "probe"}[probe]
		b.Run(name, func(b *testing.B) {
			pipe, err := gst.NewPipelineFromString(fmt.Sprintf("fakesrc num-buffers=%d sizetype=fixed sizemax=4096 ! fakesink name=sink sync=false", b.N))
			require.NoError(b, err)
			if probe {
				sink, err := pipe.GetElementByName("sink")
				require.NoError(b, err)
				newHealthMeter(2*time.Second, time.Now()).watchVideo(sink.GetStaticPad("sink"))
			}
			b.ResetTimer()
			require.NoError(b, pipe.SetState(gst.StatePlaying))
			msg := pipe.GetPipelineBus().TimedPopFiltered(gst.ClockTime(time.Minute), gst.MessageEOS|gst.MessageError)
			b.StopTimer()
			require.NotNil(b, msg)
			require.Equal(b, gst.MessageEOS, msg.Type())
			require.NoError(b, pipe.SetState(gst.StateNull))
		})
	}
}
