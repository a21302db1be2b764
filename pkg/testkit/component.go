package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ClipName is the file name of the shared test clip: Big Buck Bunny,
// 1080p60 H.264 High with B-frames and 5.1 AAC, 10 s.
const ClipName = "big_buck_bunny_1080p60_10s.mp4"

// FindSharedClip returns the shared clip, ../shared/media/<ClipName> from
// the repository root, when it is there. Every test must also run without it
// (generating a stand-in), so its absence is not an error.
// DIONYSIA_TEST_GENERATED_SOURCE=1 pretends it is absent.
func FindSharedClip(root string) (string, bool) {
	if os.Getenv("DIONYSIA_TEST_GENERATED_SOURCE") == "1" {
		return "", false
	}
	p := filepath.Join(root, "..", "shared", "media", ClipName)
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}

// SharedClip is FindSharedClip from the test's repository root.
func SharedClip(t testing.TB) (string, bool) {
	t.Helper()
	return FindSharedClip(RepoRoot(t))
}

// FindMediaMTX returns the pinned mediamtx build: bin/mediamtx of the
// repository, else mediamtx on PATH.
func FindMediaMTX(root string) (string, error) {
	p := filepath.Join(root, "bin", "mediamtx")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if lp, err := exec.LookPath("mediamtx"); err == nil {
		return lp, nil
	}
	return "", fmt.Errorf("%s is missing and mediamtx is not on PATH", p)
}

// MediaMTX returns the mediamtx binary, or fails (CI) or skips the test.
func MediaMTX(t testing.TB) string {
	t.Helper()
	p, err := FindMediaMTX(RepoRoot(t))
	Require(t, err, "mediamtx", "deploy/local/build-mediamtx.sh (or deploy/local/just setup)")
	return p
}

// Program returns the path of a program on PATH, or fails (CI) or skips the
// test with aptPackage as the install hint.
func Program(t testing.TB, name, aptPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err, name, "apt-get install -y "+aptPackage+" (or deploy/local/setup.sh packages)")
	return p
}

// FFmpeg returns ffmpeg's path (Debian's ffmpeg package).
func FFmpeg(t testing.TB) string {
	t.Helper()
	return Program(t, "ffmpeg", "ffmpeg")
}

// FFprobe returns ffprobe's path (Debian's ffmpeg package).
func FFprobe(t testing.TB) string {
	t.Helper()
	return Program(t, "ffprobe", "ffmpeg")
}

// Chromium returns the browser the player tests drive: $CHROMIUM, else
// Debian's chromium.
func Chromium(t testing.TB) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	_, err := os.Stat(p)
	Require(t, err, "Chromium ("+p+", or $CHROMIUM)", "apt-get install -y chromium")
	return p
}

// GStreamer checks that each named element is registered (asked of
// gst-inspect-1.0, so a test needs no cgo to check).
func GStreamer(t testing.TB, elements ...string) {
	t.Helper()
	const install = "apt-get install -y gstreamer1.0-tools gstreamer1.0-plugins-{base,good,bad,ugly} gstreamer1.0-libav"
	inspect, err := exec.LookPath("gst-inspect-1.0")
	Require(t, err, "gst-inspect-1.0", install)
	var missing []string
	for _, e := range elements {
		if exec.Command(inspect, "--exists", e).Run() != nil {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		Require(t, errors.New("not registered"), "GStreamer element(s) "+strings.Join(missing, ", "), install)
	}
}
