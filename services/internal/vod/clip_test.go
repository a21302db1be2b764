package vod_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/services/internal/vod/vodtest"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The package's tests record vodtest's clips; these keep their short names.

type clip = vodtest.Clip

func makeClip(t *testing.T, preset string, seconds int) *clip {
	t.Helper()
	return vodtest.MakeClip(t, preset, seconds)
}

// run describes one packager run of a worker recording the clip
// (vodtest.Run).
type run struct {
	token     int64
	run       int
	start     time.Time // wall clock of the first sample
	firstNum  uint64
	skipNums  map[uint64]bool // segment numbers lost (not stored)
	rendition map[string]bool // renditions to record (nil: all)
}

func record(t *testing.T, st storage.Store, asset uuid.UUID, c *clip, r run) []job.RecordedObject {
	t.Helper()
	return vodtest.Record(t, st, asset, c, vodtest.Run{Token: r.token, Run: r.run, Start: r.start, FirstNum: r.firstNum,
		Skip: r.skipNums, Renditions: r.rendition})
}

func thumbnail(t *testing.T, st storage.Store, asset uuid.UUID, at time.Time, color string) job.RecordedObject {
	t.Helper()
	return vodtest.Thumbnail(t, st, asset, at, color)
}

// serve is a file server in front of the store (as a router would be), so
// ffprobe reads the VOD files over HTTP from either backend.
func serve(t *testing.T, st storage.Store) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, info, err := st.Get(r.Context(), strings.TrimPrefix(r.URL.Path, "/"), 0, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, info.Key, info.ModTime, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// download copies an object to a local file.
func download(t *testing.T, st storage.Store, key string) string {
	t.Helper()
	rc, _, err := st.Get(t.Context(), key, 0, 0)
	require.NoError(t, err)
	defer rc.Close()
	p := filepath.Join(t.TempDir(), filepath.Base(key))
	f, err := os.Create(p)
	require.NoError(t, err)
	_, err = io.Copy(f, rc)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return p
}

// probe runs ffprobe and returns its stdout; it fails the test on an error
// or on anything ffprobe logs at level error.
func probe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.FFprobe(t), append([]string{"-v", "error"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "ffprobe %v: %s", args, stderr.String())
	require.Empty(t, strings.TrimSpace(stderr.String()), "ffprobe %v logged errors", args)
	return stdout.String()
}

// decode decodes every stream of input fully with ffmpeg and fails on any
// error it logs.
func decode(t *testing.T, input string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.FFmpeg(t), "-nostdin", "-v", "error", "-i", input, "-map", "0", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "ffmpeg logged decoding errors")
}
