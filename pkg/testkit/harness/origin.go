package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// OriginPackage is the import path of the worker's origin as a standalone
// program (the origin package is internal to the workers module).
const OriginPackage = "github.com/dionysia/dionysia/workers/internal/origin/standalone"

// BuildOrigin builds the standalone origin into out with the go tool; it
// must run inside the repository's workspace.
func BuildOrigin(ctx context.Context, out string) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", out, OriginPackage)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the origin: %w\n%s", err, b)
	}
	return nil
}

// Origin is a running standalone origin.
type Origin struct {
	URL  string
	cmd  *exec.Cmd
	once sync.Once
}

// StartOrigin runs the standalone origin bin with args (see its -help) and
// extra environment, and waits up to 10 s for its first line of output,
// "listening on URL". Its standard error goes to stderr (nil: discarded).
func StartOrigin(ctx context.Context, bin string, env []string, stderr io.Writer, args ...string) (*Origin, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the origin: %w", err)
	}
	o := &Origin{cmd: cmd}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-lines:
		url, found := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if !ok || !found {
			o.Stop()
			return nil, fmt.Errorf("the origin did not start listening (first output %q)", line)
		}
		o.URL = url
		return o, nil
	case <-time.After(10 * time.Second):
		o.Stop()
		return nil, fmt.Errorf("the origin did not start listening within 10 s")
	}
}

// Stop kills the origin and waits for it; calling it again does nothing.
func (o *Origin) Stop() {
	o.once.Do(func() {
		_ = o.cmd.Process.Kill()
		_ = o.cmd.Wait()
	})
}

// MakeMedia writes a real presentation made by ffmpeg into dir: a 6 s,
// two-rendition fMP4 HLS tree with a separate audio rendition, and a DASH
// presentation in dir/dash. It returns every file's path relative to dir,
// sorted.
func MakeMedia(ctx context.Context, dir string) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "dash"), 0o755); err != nil {
		return nil, err
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
			return nil, fmt.Errorf("generating media with ffmpeg: %w\n%s", err, out)
		}
	}
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	slices.Sort(files)
	return files, err
}
