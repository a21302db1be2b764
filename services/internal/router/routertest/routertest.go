// Package routertest provides what the router's tests and benchmark share: a
// real HLS/DASH tree made by ffmpeg and the worker's origin built as a
// standalone program (the origin package belongs to the workers module and
// cannot be imported from here).
package routertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// OriginPackage is the import path of the standalone origin program.
const OriginPackage = "github.com/dionysia/dionysia/workers/internal/origin/standalone"

// BuildOrigin builds the standalone origin into out with the go tool (run
// from inside the repository's workspace).
func BuildOrigin(ctx context.Context, out string) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", out, OriginPackage)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the origin: %w\n%s", err, b)
	}
	return nil
}

// MakeMedia writes a 6 s, two-rendition fMP4 HLS tree with a separate audio
// rendition into dir, and a DASH presentation into dir/dash.
func MakeMedia(ctx context.Context, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "dash"), 0o755); err != nil {
		return err
	}
	src := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "6"}
	enc := []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60",
		"-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k"}
	hls := append(append(append([]string{}, src...), "-map", "0:v", "-map", "0:v", "-map", "1:a"), enc...)
	hls = append(hls, "-b:v:0", "400k", "-s:v:1", "160x90", "-b:v:1", "200k",
		"-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
		"-hls_fmp4_init_filename", "init.mp4", "-master_pl_name", "index.m3u8",
		"-var_stream_map", "v:0,agroup:aud,name:720p v:1,agroup:aud,name:360p a:0,agroup:aud,name:audio",
		"-hls_segment_filename", "%v/%d.m4s", "%v/index.m3u8")
	dash := append(append(append([]string{}, src...), "-map", "0:v", "-map", "1:a"), enc...)
	dash = append(dash, "-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "0",
		"-init_seg_name", "init-$RepresentationID$.mp4", "-media_seg_name", "$RepresentationID$-$Number$.m4s", "manifest.mpd")
	for _, c := range []struct {
		dir  string
		args []string
	}{{dir, hls}, {filepath.Join(dir, "dash"), dash}} {
		cmd := exec.CommandContext(ctx, "ffmpeg", c.args...)
		cmd.Dir = c.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("generating media with ffmpeg: %w\n%s", err, out)
		}
	}
	return nil
}
