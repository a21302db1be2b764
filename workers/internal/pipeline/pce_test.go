package pipeline

import (
	"bytes"
	"context"
	"github.com/dionysia/dionysia/pkg/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
)

// clipPCE is a clip whose AAC track signals its channels with a program
// config element (channelConfiguration 0, ffprobe: channel_layout
// "unknown"): the shared 1080p60 clip, or a generated 720p30 clip with
// hexagonal (6.0) audio, which FFmpeg's encoder also signals with a PCE.
func clipPCE(t *testing.T) string {
	t.Helper()
	clip, ok := testkit.SharedClip(t)
	if !ok {
		t.Logf("shared clip %s absent: generating a PCE clip", testkit.ClipName)
		clip = generate(t, "gen-pce.mp4",
			"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=6",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
			"-af", "aformat=channel_layouts=hexagonal", "-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "192k")
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0",
		"-show_entries", "stream=channels,channel_layout", "-of", "csv=p=0", clip).Output()
	require.NoError(t, err)
	require.Equal(t, "6,unknown", strings.TrimSpace(string(out)), "the clip's AAC must be 6 channels signalled by a PCE")
	return clip
}

// TestEdgePCEAudio: AAC whose channel layout is a program config element
// reaches the worker without it (mediamtx re-serialises the
// AudioSpecificConfig with channelConfiguration 0 and no PCE, over RTMP as
// codec_data and over SRT as ADTS headers). The pipeline recovers the layout
// from the bitstream and still delivers stereo 48 kHz AAC with the video.
func TestEdgePCEAudio(t *testing.T) {
	e := startMediaMTX(t)
	publish(t, e, clipPCE(t), "live/pce")
	for _, tc := range []struct{ name, url string }{
		{"rtmp", e.rtmpURL("live/pce")},
		{"srt", e.srtURL("live/pce")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := newRecordingSink(t)
			lad := builtin(t, ladder.Builtin720p)
			lad.Renditions = lad.Renditions[2:] // 360p: the CPU is shared
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p, err := New(Config{StreamID: "pce-" + tc.name, Ladder: lad, SegmentDuration: 2 * time.Second, Logger: testLogger(t),
				Source: job.Source{URL: tc.url, User: "reader", Password: "secret"}})
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
			// About 7 s of the live source, however long a loaded machine takes.
			require.Eventually(t, func() bool { return sink.frames(0) >= 210 }, 2*time.Minute, 50*time.Millisecond)
			before := p.Stats().AudioFramesOut
			require.Eventually(t, func() bool { return p.Stats().AudioFramesOut > before }, time.Minute, 50*time.Millisecond,
				"audio frames keep flowing")
			t.Logf("stats while live: %+v", p.Stats())
			cancel()
			select {
			case err := <-done:
				require.ErrorIs(t, err, context.Canceled)
			case <-time.After(time.Minute):
				t.Fatal("Run did not return after cancel")
			}
			sink.close()
			require.Equal(t, 1, sink.tracksCalls)
			require.Equal(t, []string{"360p"}, renditionNames(sink))
			require.NotNil(t, sink.audio, "the audio track is announced")
			require.Equal(t, 2, sink.audio.Channels)
			require.Equal(t, 48000, sink.audio.SampleRate)
			// About 7 s of 48 kHz AAC is ~330 frames of 1024 samples.
			require.Greater(t, sink.audioFrames, 200)
			checkAudio(t, sink)
			require.Greater(t, sink.count[0], 100)
		})
	}
}

// mp4WithASC is a generated 3 s 320x180 MP4 with stereo AAC-LC whose
// AudioSpecificConfig (in the esds box) starts with asc instead.
func mp4WithASC(t *testing.T, name string, asc [2]byte) string {
	t.Helper()
	src := generate(t, "asc.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=3",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", "-ac", "2")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	// DecoderSpecificInfo tag, FFmpeg's 4-byte length 5, ASC of LC 48 kHz
	// stereo (then FFmpeg's SBR sync extension 56e500).
	header := []byte{0x05, 0x80, 0x80, 0x80, 0x05, 0x11, 0x90}
	require.Equal(t, 1, bytes.Count(b, header), "AAC DecoderSpecificInfo in %s", src)
	i := bytes.Index(b, header) + 5
	b[i], b[i+1] = asc[0], asc[1]
	out := filepath.Join(t.TempDir(), name+".mp4")
	require.NoError(t, os.WriteFile(out, b, 0o600))
	return out
}

// TestAACSignalling runs files whose AAC signalling is broken in the ways
// the edge or a publisher can break it: the run must recover the channels
// when the bitstream allows it, and otherwise go on with video only.
func TestAACSignalling(t *testing.T) {
	tests := []struct {
		name      string
		asc       [2]byte
		wantAudio bool
	}{
		// channelConfiguration 0 without a PCE: the raw data blocks hold
		// one CPE, so the pipeline gives the decoder a stereo PCE.
		{"no PCE", [2]byte{0x11, 0x80}, true},
		// AAC Main with channelConfiguration 0 and no PCE: not repaired.
		{"main profile without PCE", [2]byte{0x09, 0x80}, false},
		// Reserved channelConfiguration 8, which passes the checks but not
		// the decoder: the audio branch fails and is cut off.
		{"reserved channel configuration", [2]byte{0x11, 0xC0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clip := mp4WithASC(t, strings.ReplaceAll(tt.name, " ", "-"), tt.asc)
			sink := newRecordingSink(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := Run(ctx, Config{Source: fileSource(clip), Ladder: builtin(t, ladder.BuiltinPassthrough), Logger: testLogger(t)}, sink)
			require.NoError(t, err)
			sink.close()
			require.Equal(t, 1, sink.tracksCalls)
			require.Equal(t, 90, sink.count[0], "3 s of video at 30 fps")
			if !tt.wantAudio {
				require.Nil(t, sink.audio)
				require.Zero(t, sink.audioFrames)
				return
			}
			checkAudio(t, sink)
			require.Greater(t, sink.audioFrames, 100, "about 3 s of 48 kHz AAC")
		})
	}
}
