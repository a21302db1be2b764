package transcode

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/ladder"
)

func TestX264Options(t *testing.T) {
	data := []byte("\x00\x00\x01\x06\x05garbagex264 - core 164 r3095 baee400 - H.264/MPEG-4 AVC codec - Copyleft 2003-2022 - http://www.videolan.org/x264.html - options: cabac=1 ref=1 keyint=60\x00\x80more")
	require.Equal(t, "cabac=1 ref=1 keyint=60", X264Options(data))
	require.Empty(t, X264Options([]byte("no sei here")))
}

// TestFFmpegArgs checks the reference gets the encoder settings the worker's
// pipeline gives x264enc for the built-in 720p ladder.
func TestFFmpegArgs(t *testing.T) {
	l, err := ladder.Builtin(ladder.Builtin720p)
	require.NoError(t, err)
	args := FFmpegArgs("/in.mp4", l, 2*time.Second, 2, true)
	pair := func(k string) string {
		i := slices.Index(args, k)
		require.GreaterOrEqual(t, i, 0, "missing %s in %v", k, args)
		return args[i+1]
	}
	require.Equal(t, "/in.mp4", pair("-i"))
	require.Equal(t, "2800k", pair("-b:v:0"))
	require.Equal(t, "2800k", pair("-maxrate:v:0"), "x264enc ties the VBV rate to the bitrate")
	require.Equal(t, "4200k", pair("-bufsize:v:0"), "the VBV buffer comes from max_bitrate")
	require.Equal(t, "800k", pair("-b:v:2"))
	require.Equal(t, "60", pair("-g:v:1"))
	require.Equal(t, "veryfast", pair("-preset:v:2"))
	require.Equal(t, "1", pair("-threads:v:0"), "2 cores over 3 rungs: 1 thread each, like the worker")
	require.Equal(t, "0", pair("-bf"))
	require.Equal(t, "0", pair("-sc_threshold"))
	require.Equal(t, "expr:gte(t,n_forced*2)", pair("-force_key_frames"))
	require.Contains(t, args, "0:a:0")
	require.Equal(t, "1", pair("-hls_playlist"))
	require.Equal(t, "manifest.mpd", args[len(args)-1])
	require.Contains(t, pair("-filter_complex"), "[s2]fps=30,scale=640:360:flags=bilinear,format=yuv420p[v2]")
	require.Equal(t, 4, EncoderThreads(8, 1))
	require.Equal(t, 1, EncoderThreads(2, 3))
}
