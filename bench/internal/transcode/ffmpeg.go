package transcode

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/ladder"
)

// EncoderThreads mirrors the worker's x264 thread sizing (the cores shared
// among the renditions, 1–4 each), so both sides run the same encoder set-up.
func EncoderThreads(cores, renditions int) int {
	return min(4, max(1, cores/max(renditions, 1)))
}

// FFmpegArgs returns the reference command: the same job as the worker's
// pipeline done by one ffmpeg process, writing CMAF segments once and
// describing them with both a DASH MPD and HLS playlists (the dash muxer's
// hls_playlist option), as the packager does. Per rendition: frame-rate
// conversion then a bilinear scale (GStreamer's videoconvertscale default),
// libx264 with the rung's preset, ABR at the rung's bitrate with the VBV rate
// equal to it and a VBV buffer of max_bitrate (what x264enc gets from the
// pipeline), no B-frames, a closed GOP of the keyframe interval without scene
// cuts and keyframes forced on every segment boundary. Audio: stereo AAC
// encoded once. The command runs in the output directory.
func FFmpegArgs(src string, l ladder.Ladder, segment time.Duration, cores int, hasAudio bool) []string {
	l = l.WithDefaults()
	n := len(l.Renditions)
	var fc strings.Builder
	fmt.Fprintf(&fc, "[0:v]split=%d", n)
	for i := range n {
		fmt.Fprintf(&fc, "[s%d]", i)
	}
	for i, r := range l.Renditions {
		fmt.Fprintf(&fc, ";[s%d]fps=%s,scale=%d:%d:flags=bilinear,format=yuv420p[v%d]", i, fpsExpr(r.FrameRate), r.Width, r.Height, i)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", src, "-filter_complex", fc.String()}
	for i := range n {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
	}
	if hasAudio {
		args = append(args, "-map", "0:a:0")
	}
	seg := segment.Seconds()
	threads := strconv.Itoa(EncoderThreads(cores, n))
	args = append(args, "-c:v", "libx264", "-profile:v", "high", "-bf", "0", "-sc_threshold", "0",
		"-x264-params", "open-gop=0", "-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%g)", seg))
	for i, r := range l.Renditions {
		s := strconv.Itoa(i)
		gop := strconv.Itoa(int(math.Round(r.KeyframeInterval * r.FrameRate)))
		args = append(args,
			"-preset:v:"+s, r.Preset,
			"-threads:v:"+s, threads,
			"-b:v:"+s, fmt.Sprintf("%dk", r.VideoBitrateKbps),
			"-maxrate:v:"+s, fmt.Sprintf("%dk", r.VideoBitrateKbps),
			"-bufsize:v:"+s, fmt.Sprintf("%dk", r.MaxBitrateKbps),
			"-g:v:"+s, gop, "-keyint_min:v:"+s, gop)
	}
	if hasAudio {
		args = append(args, "-c:a", "aac", "-b:a", fmt.Sprintf("%dk", l.Audio.BitrateKbps),
			"-ac", strconv.Itoa(l.Audio.Channels), "-ar", strconv.Itoa(l.Audio.SampleRate))
	}
	sets := "id=0,streams=v"
	if hasAudio {
		sets += " id=1,streams=a"
	}
	return append(args, "-f", "dash", "-seg_duration", strconv.FormatFloat(seg, 'f', -1, 64),
		"-use_template", "1", "-use_timeline", "1", "-hls_playlist", "1", "-adaptation_sets", sets, "manifest.mpd")
}

func fpsExpr(f float64) string {
	if f <= 0 {
		return "source_fps"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
