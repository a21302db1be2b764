package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func fileSource(path string) job.Source { return job.Source{URL: "file://" + path} }

func builtin(t *testing.T, name string) ladder.Ladder {
	l, err := ladder.Builtin(name)
	require.NoError(t, err)
	return l
}

// checkRenditions ffprobes each rendition file against its track.
func checkRenditions(t *testing.T, s *recordingSink, wantFPS string) {
	t.Helper()
	for i, v := range s.video {
		path := s.path(v.Name + ".h264")
		st := ffprobeStream(t, path)
		t.Logf("ffprobe %s: codec=%s profile=%s %dx%d r_frame_rate=%s pix_fmt=%s has_b_frames=%d",
			v.Name, st.CodecName, st.Profile, st.Width, st.Height, st.RFrameRate, st.PixFmt, st.HasBFrames)
		require.Equal(t, "h264", st.CodecName)
		require.Equal(t, "High", st.Profile)
		require.Equal(t, "yuv420p", st.PixFmt)
		require.Equal(t, v.Width, st.Width)
		require.Equal(t, v.Height, st.Height)
		require.Equal(t, wantFPS, st.RFrameRate)
		keys, frames := ffprobeKeyframes(t, path)
		t.Logf("ffprobe %s: %d frames, key frames at %v", v.Name, frames, keys)
		require.Equal(t, s.count[i], frames, "frames in %s", v.Name)
		require.Len(t, keys, len(s.keyPTS[i]), "bitstream IDRs vs Keyframe flags of %s", v.Name)
	}
}

func checkAudio(t *testing.T, s *recordingSink) {
	t.Helper()
	require.NotNil(t, s.audio)
	require.Positive(t, s.audioFrames)
	st := ffprobeStream(t, s.path("audio.aac"))
	t.Logf("ffprobe audio: codec=%s profile=%s channels=%d sample_rate=%s layout=%s", st.CodecName, st.Profile, st.Channels, st.SampleRate, st.ChannelLayou)
	require.Equal(t, "aac", st.CodecName)
	require.Equal(t, "LC", st.Profile)
	require.Equal(t, 2, st.Channels)
	require.Equal(t, "48000", st.SampleRate)
}

// TestFile720Ladder runs the 720p ladder over a generated 720p30 clip with
// B-frames and 5.1 audio (44.1 kHz) to EOS.
func TestFile720Ladder(t *testing.T) {
	clip := clip720(t)
	sink := newRecordingSink(t)
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	require.NoError(t, err)
	p, err := New(Config{StreamID: "s720", Source: fileSource(clip), Ladder: builtin(t, ladder.Builtin720p),
		SegmentDuration: 4 * time.Second, Logger: testLogger(t), Metrics: metrics})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	require.NoError(t, p.Run(ctx, sink))
	t.Logf("5 s of 720p30 → 3 renditions in %s", time.Since(start).Round(time.Millisecond))
	sink.close()

	require.Equal(t, 1, sink.tracksCalls)
	require.Equal(t, []string{"720p", "480p", "360p"}, renditionNames(sink))
	require.Equal(t, [2]int{854, 480}, [2]int{sink.video[1].Width, sink.video[1].Height})
	for i := range sink.video {
		require.Equal(t, 150, sink.count[i], "5 s at 30 fps in %s", sink.video[i].Name)
	}
	checkKeyframesAligned(t, sink)
	require.Equal(t, []time.Duration{0, 2 * time.Second, 4 * time.Second}, relative(sink.keyPTS[0]))
	// Both tracks are on the running time, starting together.
	t.Logf("first video PTS %s, first audio PTS %s", sink.firstVideo, sink.firstAudio)
	require.Less(t, sink.firstVideo, 200*time.Millisecond)
	require.GreaterOrEqual(t, sink.firstVideo, time.Duration(0))
	require.InDelta(t, sink.firstVideo.Seconds(), sink.firstAudio.Seconds(), 0.1)
	checkRenditions(t, sink, "30/1")
	checkAudio(t, sink)

	opts := x264Options(t, sink.path("720p.h264"))
	t.Logf("x264 options: keyint=%s scenecut=%s bframes=%s vbv_maxrate=%s vbv_bufsize=%s threads=%s",
		opts["keyint"], opts["scenecut"], opts["bframes"], opts["vbv_maxrate"], opts["vbv_bufsize"], opts["threads"])
	require.Equal(t, "60", opts["keyint"])
	require.Equal(t, "0", opts["scenecut"])
	require.Equal(t, "0", opts["bframes"])
	require.Equal(t, "2800", opts["bitrate"])
	require.Equal(t, "4200", opts["vbv_bufsize"])

	st := p.Stats()
	require.Len(t, st.Renditions, 3)
	for _, r := range st.Renditions {
		require.EqualValues(t, 150, r.FramesIn, r.Name)
		require.EqualValues(t, 150, r.FramesOut, r.Name)
		require.Greater(t, r.RealtimeFactor, 0.0, r.Name)
	}
	require.Positive(t, st.AudioFramesOut)
	// The finished run no longer exports series.
	require.Equal(t, 0, testutil.CollectAndCount(metrics))
}

func relative(ts []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = (t - ts[0]).Round(time.Millisecond)
	}
	return out
}

// TestClip1080Ladder runs the full 1080p ladder over the shared 1080p60 clip
// (H.264 High with B-frames, AAC 5.1): 60 fps is halved to 30, audio is
// downmixed to stereo 48 kHz.
func TestClip1080Ladder(t *testing.T) {
	if testing.Short() {
		t.Skip("1080p60 ladder: slow on two cores")
	}
	clip := clip1080(t)
	sink := newRecordingSink(t)
	p, err := New(Config{StreamID: "s1080", Source: fileSource(clip), Ladder: builtin(t, ladder.Builtin1080p),
		SegmentDuration: 4 * time.Second, Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	require.NoError(t, p.Run(ctx, sink))
	t.Logf("1080p60 clip → 4 renditions in %s, stats %+v", time.Since(start).Round(time.Millisecond), p.Stats())
	sink.close()
	require.Equal(t, []string{"1080p", "720p", "480p", "360p"}, renditionNames(sink))
	checkKeyframesAligned(t, sink)
	checkRenditions(t, sink, "30/1")
	checkAudio(t, sink)
	for _, r := range p.Stats().Renditions {
		require.InDelta(t, float64(r.FramesIn)/2, float64(r.FramesOut), 2, "60→30 fps in %s", r.Name)
		require.InDelta(t, float64(r.FramesIn)/2, float64(r.Dropped), 2, "videorate drops half in %s", r.Name)
	}
}

// TestEdge pulls from a real local mediamtx, over RTMP and SRT, with the read
// credential, while ffmpeg publishes the clip in real time; the run is
// cancelled after ~6 s and must return within 2 s.
func TestEdge(t *testing.T) {
	e := startMediaMTX(t)
	publish(t, e, clip720(t), "live/test")
	for _, tc := range []struct{ name, url string }{
		{"rtmp", e.rtmpURL("live/test")},
		{"srt", e.srtURL("live/test")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newRecordingSink(t)
			lad := builtin(t, ladder.Builtin720p)
			lad.Renditions = lad.Renditions[1:] // 480p + 360p: the CPU is shared
			reg := prometheus.NewRegistry()
			metrics, err := NewMetrics(reg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := New(Config{StreamID: "edge-" + tc.name, Ladder: lad, SegmentDuration: 2 * time.Second, Logger: testLogger(t),
				Source: job.Source{URL: tc.url, User: "reader", Password: "secret"}, Metrics: metrics})
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, sink) }()
			select {
			case <-sink.firstFrame:
			case err := <-done:
				t.Fatalf("run ended before the first frame: %v", err)
			case <-time.After(2 * time.Minute):
				t.Fatal("no frame within 2 min")
			}
			// About 6 s of the live source (however long a loaded machine
			// takes to encode it).
			require.Eventually(t, func() bool { return sink.frames(0) >= 180 }, 2*time.Minute, 50*time.Millisecond,
				"6 s at 30 fps")
			st := p.Stats()
			t.Logf("stats while live: %+v", st)
			for _, r := range st.Renditions {
				require.Positive(t, r.FramesIn, r.Name)
				require.Positive(t, r.EncodeFPS, r.Name)
				require.Positive(t, r.RealtimeFactor, r.Name)
			}
			require.Equal(t, 2, testutil.CollectAndCount(metrics, "dionysia_worker_frames_out_total"))
			require.Equal(t, 2, testutil.CollectAndCount(metrics, "dionysia_worker_encode_fps"))
			cancel()
			stopAt := time.Now()
			select {
			case err := <-done:
				took := time.Since(stopAt)
				t.Logf("Run returned %v %s after cancel", err, took.Round(time.Millisecond))
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(time.Minute):
				t.Fatal("Run did not return after cancel")
			}
			sink.close()
			require.Equal(t, 1, sink.tracksCalls)
			checkKeyframesAligned(t, sink)
			checkRenditions(t, sink, "30/1")
			checkAudio(t, sink)
			require.GreaterOrEqual(t, sink.count[0], 180, "about 6 s at 30 fps")
		})
	}
	t.Run("publisher stops", func(t *testing.T) {
		// The 5 s clip published once, read from its start: the run must end
		// by itself, as an end of stream, with everything flushed.
		// Twice the 5 s clip, so that the path is still live once mediamtx
		// made it readable, however loaded the machine.
		publishN(t, e, clip720(t), "live/once", 1)
		sink := newRecordingSink(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		lad := builtin(t, ladder.Builtin720p)
		lad.Renditions = lad.Renditions[2:]
		start := time.Now()
		err := Run(ctx, Config{Ladder: lad, Logger: testLogger(t),
			Source: job.Source{URL: e.rtmpURL("live/once"), User: "reader", Password: "secret"}}, sink)
		t.Logf("publisher stopped: Run returned %v after %s with %d frames", err, time.Since(start).Round(time.Millisecond), sink.frames(0))
		require.NoError(t, err)
		require.Positive(t, sink.frames(0))
	})
	t.Run("wrong password", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		err := Run(ctx, Config{Ladder: builtin(t, ladder.Builtin720p), Logger: testLogger(t),
			Source: job.Source{URL: e.rtmpURL("live/test"), User: "reader", Password: "wrong-pw"}}, newRecordingSink(t))
		t.Logf("wrong password: %v (%s)", err, time.Since(start).Round(time.Millisecond))
		require.ErrorIs(t, err, ErrSourceUnreachable)
		require.NotContains(t, err.Error(), "wrong-pw")
	})
	t.Run("no such stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := Run(ctx, Config{Ladder: builtin(t, ladder.Builtin720p), Logger: testLogger(t),
			Source: job.Source{URL: e.rtmpURL("live/nothing"), User: "reader", Password: "secret"}}, newRecordingSink(t))
		t.Logf("no such stream: %v", err)
		require.ErrorIs(t, err, ErrSourceUnreachable)
	})
}

// TestBadSources: each bad source fails its run quickly with a clear reason,
// and the next run in the same process works.
// TestEdgeRTSP reads sources whose codecs do not survive RTMP from the edge
// over RTSP (ADR 0015): H.264 with Opus (what a WHIP publisher sends) and
// H.265 with AAC published over SRT. Every rendition has video and the audio
// is the ladder's stereo AAC.
func TestEdgeRTSP(t *testing.T) {
	e := startMediaMTX(t)
	for _, tc := range []struct {
		name, path string
		out        []string
	}{
		{"h264 opus", "live/opus", []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "libopus", "-b:a", "64k",
			"-f", "rtsp", "-rtsp_transport", "tcp", e.rtspURL("live/opus")}},
		// A keyframe every 10 s: the edge sends an RTSP reader the frames
		// in front of the next keyframe too; the run starts at it.
		{"h264 opus 10 s keyframes", "live/longgop", []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "300", "-keyint_min", "300",
			"-sc_threshold", "0", "-c:a", "libopus", "-b:a", "64k", "-f", "rtsp", "-rtsp_transport", "tcp", e.rtspURL("live/longgop")}},
		{"h265 aac", "live/hevc", []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=30:log-level=error",
			"-c:a", "aac", "-f", "mpegts", "srt://" + e.srt + "?streamid=publish:live/hevc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			publishLive(t, e, tc.path, tc.out...)
			sink := newRecordingSink(t)
			lad := builtin(t, ladder.Builtin720p)
			lad.Renditions = lad.Renditions[2:] // 360p: the CPU is shared
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := New(Config{StreamID: "rtsp", Ladder: lad, SegmentDuration: 2 * time.Second, Logger: testLogger(t),
				Source: job.Source{URL: e.rtspURL(tc.path), User: "reader", Password: "secret"}})
			require.NoError(t, err)
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx, sink) }()
			select {
			case <-sink.firstFrame:
			case err := <-done:
				t.Fatalf("run ended before the first frame: %v", err)
			case <-time.After(2 * time.Minute):
				t.Fatal("no frame within 2 min")
			}
			require.Eventually(t, func() bool { return sink.frames(0) >= 90 }, 2*time.Minute, 50*time.Millisecond, "3 s at 30 fps")
			cancel()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(time.Minute):
				t.Fatal("Run did not return after cancel")
			}
			sink.close()
			checkRenditions(t, sink, "30/1")
			checkAudio(t, sink)
		})
	}
}

// TestEdgeRTSPEnds: an RTSP read ends as an RTMP read does: by itself, as an
// end of stream, when the publisher stops; as unreachable with a wrong
// password or without a publisher.
func TestEdgeRTSPEnds(t *testing.T) {
	e := startMediaMTX(t)
	lad := builtin(t, ladder.Builtin720p)
	lad.Renditions = lad.Renditions[2:]
	t.Run("publisher stops", func(t *testing.T) {
		// 8 s of media, so that the path is still live once mediamtx made
		// it readable, however loaded the machine.
		publishLive(t, e, "live/once", "-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
			"-c:a", "libopus", "-b:a", "64k", "-f", "rtsp", "-rtsp_transport", "tcp", e.rtspURL("live/once"))
		sink := newRecordingSink(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		err := Run(ctx, Config{Ladder: lad, Logger: testLogger(t),
			Source: job.Source{URL: e.rtspURL("live/once"), User: "reader", Password: "secret"}}, sink)
		t.Logf("publisher stopped: Run returned %v after %s with %d frames", err, time.Since(start).Round(time.Millisecond), sink.frames(0))
		require.NoError(t, err)
		require.Positive(t, sink.frames(0))
	})
	for _, tc := range []struct{ name, path, password string }{
		{"wrong password", "live/once", "wrong-pw"},
		{"no such stream", "live/nothing", "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := Run(ctx, Config{Ladder: lad, Logger: testLogger(t),
				Source: job.Source{URL: e.rtspURL(tc.path), User: "reader", Password: tc.password}}, newRecordingSink(t))
			t.Logf("%s: %v", tc.name, err)
			require.ErrorIs(t, err, ErrSourceUnreachable)
			require.NotContains(t, err.Error(), "wrong-pw")
		})
	}
}

func TestBadSources(t *testing.T) {
	garbage := filepath.Join(testDir, "garbage.mp4")
	b := make([]byte, 256*1024)
	for i := range b {
		b[i] = byte(i*7919 + i/13)
	}
	require.NoError(t, os.WriteFile(garbage, b, 0o600))
	audioOnly := generate(t, "audio-only.m4a", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2", "-c:a", "aac")
	vp8 := generate(t, "vp8.webm", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=2", "-c:v", "libvpx", "-b:v", "200k")
	mjpeg := generate(t, "mjpeg.mkv", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=2", "-c:v", "mjpeg")

	tests := []struct {
		name   string
		src    job.Source
		want   error
		reason string
	}{
		{"audio only", fileSource(audioOnly), ErrNoVideo, "source has no video stream"},
		{"garbage bytes", fileSource(garbage), ErrBadStream, ""},
		{"vp8", fileSource(vp8), ErrUnsupportedCodec, "video/x-vp8"},
		{"mjpeg", fileSource(mjpeg), ErrUnsupportedCodec, "image/jpeg"},
		{"missing file", fileSource(filepath.Join(testDir, "nope.mp4")), ErrSourceUnreachable, ""},
		{"nothing listening", job.Source{URL: "rtmp://127.0.0.1:28999/live/x"}, ErrSourceUnreachable, ""},
		{"srt nothing listening", job.Source{URL: "srt://127.0.0.1:28998?streamid=read:live/x"}, ErrSourceUnreachable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			sink := newRecordingSink(t)
			start := time.Now()
			err := Run(ctx, Config{Source: tt.src, Ladder: builtin(t, ladder.Builtin720p), Logger: testLogger(t)}, sink)
			t.Logf("%s → %v (%s)", tt.name, err, time.Since(start).Round(time.Millisecond))
			require.ErrorIs(t, err, tt.want)
			require.Contains(t, err.Error(), tt.reason)
			require.Less(t, time.Since(start), 10*time.Second)
			require.Zero(t, sink.tracksCalls)
		})
	}
	t.Run("a good run afterwards", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sink := newRecordingSink(t)
		require.NoError(t, Run(ctx, Config{Source: fileSource(clipTiny(t)), Ladder: builtin(t, ladder.BuiltinPassthrough), Logger: testLogger(t)}, sink))
		require.Equal(t, 60, sink.count[0])
	})
}

// TestNoAudio: a source without audio still works; the sink gets audio=nil.
func TestNoAudio(t *testing.T) {
	clip := generate(t, "video-only.mp4", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	sink := newRecordingSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, Run(ctx, Config{Source: fileSource(clip), Ladder: builtin(t, ladder.Builtin720p), Logger: testLogger(t)}, sink))
	require.Equal(t, 1, sink.tracksCalls)
	require.Nil(t, sink.audio)
	require.Equal(t, []string{"360p"}, renditionNames(sink))
	require.Equal(t, 50, sink.count[0]) // 25 fps source: the 30 fps rung keeps 25
	sink.close()
	checkRenditions(t, sink, "25/1")
}

// TestSinkError: a sink error stops the run and is returned.
func TestSinkError(t *testing.T) {
	sink := newRecordingSink(t)
	sink.failAfter = 10
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, Config{Source: fileSource(clip720(t)), Ladder: builtin(t, ladder.Builtin720p), Logger: testLogger(t)}, sink)
	require.ErrorIs(t, err, ErrSink)
	require.Contains(t, err.Error(), "disk full (test)")
}

// TestCancelFile: cancelling a file run mid-way returns (the time it took is
// logged; just bench measures it).
func TestCancelFile(t *testing.T) {
	sink := newRecordingSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Source: fileSource(clip1080(t)), Ladder: builtin(t, ladder.Builtin720p), Logger: testLogger(t)}, sink)
	}()
	select {
	case <-sink.firstFrame:
	case err := <-done:
		t.Fatalf("ended early: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no first frame")
	}
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		t.Logf("returned %s after cancel", time.Since(start).Round(time.Millisecond))
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestNoLeaks runs 100 short start/stop cycles (half to EOS, half cancelled
// after the first frame), with thumbnails as workers run them, and checks
// goroutines, file descriptors and GStreamer elements return to where they
// were.
func TestNoLeaks(t *testing.T) {
	clip := clipTiny(t)
	lad := ladder.Ladder{Renditions: []ladder.Rendition{
		{Name: "a", Width: 320, Height: 180, VideoBitrateKbps: 300, FrameRate: 30, Preset: "ultrafast"},
		{Name: "b", Width: 160, Height: 90, VideoBitrateKbps: 100, FrameRate: 15, Preset: "ultrafast"},
	}}
	thumbDir := t.TempDir()
	run := func(i int) {
		sink := newRecordingSink(t)
		defer sink.close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cfg := Config{StreamID: fmt.Sprint(i), Source: fileSource(clip), Ladder: lad, EncoderThreads: 1,
			ThumbnailInterval: 500 * time.Millisecond, ThumbnailDir: thumbDir}
		if i%2 == 0 {
			require.NoError(t, Run(ctx, cfg, sink), "cycle %d", i)
			return
		}
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, sink) }()
		select {
		case <-sink.firstFrame:
			// The counter sees the running pipeline's elements.
			require.Greater(t, LiveObjects(), 20, "cycle %d", i)
			cancel()
			err := <-done
			if err != nil {
				require.ErrorIs(t, err, context.Canceled, "cycle %d", i)
			}
		case err := <-done:
			require.NoError(t, err, "cycle %d", i)
		}
		sink.close()
	}
	run(-2) // warm up: GStreamer's own threads and plugin loading
	settle()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	start := time.Now()
	const cycles = 100
	for i := range cycles {
		run(i)
	}
	took := time.Since(start)
	settle()
	var live int
	for range 50 {
		if live = LiveObjects(); live == 0 {
			break
		}
		settle()
	}
	t.Logf("%d cycles in %s; goroutines %d → %d, fds %d → %d, live GStreamer elements %d",
		cycles, took.Round(time.Millisecond), goroutines, runtime.NumGoroutine(), fds, openFDs(t), live)
	require.Zero(t, live, "GStreamer elements left alive")
	require.FileExists(t, filepath.Join(thumbDir, ThumbnailFile))
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines+2)
	require.LessOrEqual(t, openFDs(t), fds+3)
}

func settle() {
	for range 3 {
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
	}
}
