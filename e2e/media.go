package e2e

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// RepoRoot returns the repository root (the directory holding go.work).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the working directory")
		}
		dir = parent
	}
}

var (
	clipOnce sync.Once
	clipPath string
	clipErr  string
)

// Clip returns the shared test clip (../shared/media from the repo root: Big
// Buck Bunny 1080p60, 5.1 AAC) or, when it is absent, a clip generated once
// with ffmpeg that has the same traits that matter: H.264 High with B-frames,
// 60 fps, 6-channel AAC.
func Clip(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	shared := filepath.Join(root, "..", "shared", "media", "big_buck_bunny_1080p60_10s.mp4")
	if _, err := os.Stat(shared); err == nil && os.Getenv("E2E_GENERATED_CLIP") == "" {
		return shared
	}
	clipOnce.Do(func() {
		dir := filepath.Join(root, ".dev", "e2e")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			clipErr = err.Error()
			return
		}
		out := filepath.Join(dir, "generated_1080p60_10s.mp4")
		if _, err := os.Stat(out); err == nil {
			clipPath = out
			return
		}
		tmp := out + ".tmp.mp4"
		if msg, err := RunErr(3*time.Minute, nil, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=60",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", "10", "-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-bf", "2", "-g", "120", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-ac", "6", "-b:a", "192k", tmp); err != nil {
			clipErr = msg + err.Error()
			return
		}
		if err := os.Rename(tmp, out); err != nil {
			clipErr = err.Error()
			return
		}
		clipPath = out
	})
	if clipPath == "" {
		t.Fatalf("generating a test clip: %s", clipErr)
	}
	return clipPath
}

// PublishRTMP publishes the clip, looped in real time, to an RTMP URL.
func PublishRTMP(t testing.TB, logDir, name, url string) *Proc {
	t.Helper()
	return StartProc(t, logDir, name, nil, "ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", Clip(t), "-c", "copy", "-f", "flv", url)
}

// PublishSRT publishes the clip, looped in real time, over SRT (MPEG-TS).
func PublishSRT(t testing.TB, logDir, name, url string) *Proc {
	t.Helper()
	return StartProc(t, logDir, name, nil, "ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", Clip(t), "-c", "copy", "-f", "mpegts", url)
}
