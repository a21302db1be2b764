package e2e

import (
	"context"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/harness"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	clipOnce sync.Once
	clipPath string
	clipErr  string
)

// Clip returns the clip the suite publishes: the shared test clip (../shared/media
// from the repo root: Big Buck Bunny 1080p60 H.264 High with B-frames, 5.1 AAC
// described by a program config element) with its video re-encoded once to
// the 2 s keyframe interval streaming services ask encoders for (the original
// has one keyframe every 4.17 s, and a new reader of a live stream must wait
// for a keyframe); the audio is copied untouched. Without the shared clip, a
// generated clip with the same traits is used. Both are cached in .dev/e2e.
func Clip(t testing.TB) string {
	t.Helper()
	clipOnce.Do(func() { clipPath, clipErr = makeClip(testkit.RepoRoot(t)) })
	if clipPath == "" {
		t.Fatalf("preparing the test clip: %s", clipErr)
	}
	return clipPath
}

func makeClip(root string) (string, string) {
	dir := filepath.Join(root, ".dev", "e2e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err.Error()
	}
	shared, ok := testkit.FindSharedClip(root)
	useShared := ok && os.Getenv("E2E_GENERATED_CLIP") == ""
	out := filepath.Join(dir, "generated_1080p60_10s.mp4")
	args := []string{"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=60",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10", "-map", "0:v", "-map", "1:a",
		"-c:a", "aac", "-ac", "6", "-b:a", "192k"}
	if useShared {
		out = filepath.Join(dir, "bbb_1080p60_10s_gop2s.mp4")
		args = []string{"-i", shared, "-map", "0:v", "-map", "0:a", "-c:a", "copy"}
	}
	if _, err := os.Stat(out); err == nil {
		return out, ""
	}
	tmp := out + ".tmp.mp4"
	args = append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...),
		"-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-bf", "2", "-g", "120", "-keyint_min", "120",
		"-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "4M", "-maxrate", "6M", "-bufsize", "8M", tmp)
	if msg, err := harness.Run(context.Background(), 5*time.Minute, nil, "ffmpeg", args...); err != nil {
		return "", msg + err.Error()
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err.Error()
	}
	return out, ""
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
