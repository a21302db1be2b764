package origin_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/workers/internal/origin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

const (
	secretMarker = "SECRET-OUTSIDE-STREAM"
	otherMarker  = "OTHER-STREAM-NOT-HELD"
	hiddenMarker = "HIDDEN-FILE"
)

type testBundle struct {
	dir     string
	stream  string
	other   string
	held    atomic.Bool
	server  *httptest.Server
	handler http.Handler
	reg     *prometheus.Registry
}

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func setup(t *testing.T, mutate func(*origin.Config)) *testBundle {
	t.Helper()
	b := &testBundle{dir: t.TempDir(), stream: uuid.NewString(), other: uuid.NewString(), reg: prometheus.NewRegistry()}
	b.held.Store(true)
	sd := filepath.Join(b.dir, b.stream)
	write(t, filepath.Join(sd, "index.m3u8"), "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n720p/index.m3u8\n")
	write(t, filepath.Join(sd, "720p", "index.m3u8"), "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\n1.m4s\n")
	write(t, filepath.Join(sd, "720p", "init.mp4"), "init-bytes")
	write(t, filepath.Join(sd, "720p", "1.m4s"), strings.Repeat("0123456789", 100))
	write(t, filepath.Join(sd, "audio", "init.mp4"), "audio-init")
	write(t, filepath.Join(sd, "audio", "1.m4s"), "audio-seg")
	write(t, filepath.Join(sd, "manifest.mpd"), "<MPD/>")
	write(t, filepath.Join(sd, ".hidden.m3u8"), hiddenMarker)
	write(t, filepath.Join(sd, "notes.txt"), "not a media file")
	write(t, filepath.Join(b.dir, "secret.m3u8"), secretMarker)
	write(t, filepath.Join(b.dir, b.other, "index.m3u8"), otherMarker)
	require.NoError(t, os.Symlink(filepath.Join(b.dir, "secret.m3u8"), filepath.Join(sd, "abs-escape.m3u8")))
	require.NoError(t, os.Symlink("../secret.m3u8", filepath.Join(sd, "rel-escape.m3u8")))
	require.NoError(t, os.Symlink("../"+b.other+"/index.m3u8", filepath.Join(sd, "sibling.m3u8")))
	require.NoError(t, os.Symlink("/etc", filepath.Join(sd, "etc")))
	cfg := origin.Config{
		DataDir:  b.dir,
		Holds:    func(id string) bool { return id == b.stream && b.held.Load() },
		Signed:   func(context.Context, string) bool { return false },
		WorkerID: "w-test",
		Registry: b.reg,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := origin.New(cfg)
	require.NoError(t, err)
	b.handler = h
	b.server = httptest.NewServer(h)
	t.Cleanup(b.server.Close)
	return b
}

func (b *testBundle) get(t *testing.T, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.server.URL+path, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.server.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(body)
}

// raw sends target verbatim on the wire, bypassing any client-side cleaning.
func (b *testBundle) raw(t *testing.T, target string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.server.Listener.Addr().String(), time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n", target)
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func TestServesFilesWithHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	cases := []struct{ file, ctype, cache string }{
		{"index.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1"},
		{"720p/index.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1"},
		{"manifest.mpd", "application/dash+xml", "public, max-age=1"},
		{"720p/init.mp4", "video/mp4", "public, max-age=31536000, immutable"},
		{"720p/1.m4s", "video/iso.segment", "public, max-age=31536000, immutable"},
		{"audio/init.mp4", "audio/mp4", "public, max-age=31536000, immutable"},
		{"audio/1.m4s", "audio/mp4", "public, max-age=31536000, immutable"},
	}
	for _, c := range cases {
		res, body := b.get(t, playback.URLPath(b.stream, "", c.file), nil)
		require.Equal(t, http.StatusOK, res.StatusCode, c.file)
		require.Equal(t, c.ctype, res.Header.Get("Content-Type"), c.file)
		require.Equal(t, c.cache, res.Header.Get("Cache-Control"), c.file)
		require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
		require.NotEmpty(t, res.Header.Get("ETag"))
		require.NotEmpty(t, res.Header.Get("Last-Modified"))
		require.Equal(t, "w-test", res.Header.Get("X-Dionysia-Worker"))
		want, err := os.ReadFile(filepath.Join(b.dir, b.stream, c.file))
		require.NoError(t, err)
		require.Equal(t, string(want), body)
	}
	// A token prefix is accepted (and ignored without a signer).
	res, _ := b.get(t, playback.URLPath(b.stream, "k.a.b", "720p/1.m4s"), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 8.0, counter(t, b.reg, origin.OutcomeServed))
}

func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestPlaylistMaxAgeFollowsSegmentDuration(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *origin.Config) { c.SegmentDuration = 6 * time.Second })
	res, _ := b.get(t, playback.URLPath(b.stream, "", "index.m3u8"), nil)
	require.Equal(t, "public, max-age=3", res.Header.Get("Cache-Control"))
}

func TestConditionalAndRange(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := playback.URLPath(b.stream, "", "720p/1.m4s")
	res, _ := b.get(t, p, nil)
	etag, lastModified := res.Header.Get("ETag"), res.Header.Get("Last-Modified")

	res, body := b.get(t, p, map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, res.StatusCode)
	require.Empty(t, body)

	res, _ = b.get(t, p, map[string]string{"If-Modified-Since": lastModified})
	require.Equal(t, http.StatusNotModified, res.StatusCode)

	res, body = b.get(t, p, map[string]string{"Range": "bytes=10-19"})
	require.Equal(t, http.StatusPartialContent, res.StatusCode)
	require.Equal(t, "bytes 10-19/1000", res.Header.Get("Content-Range"))
	require.Equal(t, "0123456789", body)

	req, err := http.NewRequest(http.MethodHead, b.server.URL+p, nil)
	require.NoError(t, err)
	res, err = b.server.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "1000", res.Header.Get("Content-Length"))
}

func TestCORSPreflightAndMethods(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	req, err := http.NewRequest(http.MethodOptions, b.server.URL+playback.URLPath(b.stream, "", "index.m3u8"), nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://player.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	res, err := b.server.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, res.Header.Get("Access-Control-Allow-Headers"), "Range")

	res, err = b.server.Client().Post(b.server.URL+playback.URLPath(b.stream, "", "index.m3u8"), "text/plain", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

func TestOnlyHeldStreams(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := playback.URLPath(b.stream, "", "index.m3u8")
	res, _ := b.get(t, p, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)

	b.held.Store(false) // ownership lost
	res, body := b.get(t, p, nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.Contains(t, body, "not served by this origin")
	require.Equal(t, origin.NotHeldValue, res.Header.Get(origin.NotHeldHeader))

	res, body = b.get(t, playback.URLPath(b.other, "", "index.m3u8"), nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.NotContains(t, body, otherMarker)
}

func TestTraversalRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	base := "/live/" + b.stream + "/"
	targets := []string{
		base + "../secret.m3u8",
		base + "..%2fsecret.m3u8",
		base + "%2e%2e/secret.m3u8",
		base + "%2E%2E%2Fsecret.m3u8",
		base + "%2e%2e%2f" + b.other + "%2findex.m3u8",
		base + "../" + b.other + "/index.m3u8",
		base + "720p/../../secret.m3u8",
		base + "..\\secret.m3u8",
		base + "%5c..%5csecret.m3u8",
		base + "secret.m3u8%00.m4s",
		base + ".hidden.m3u8",
		base + "%2ehidden.m3u8",
		base + "abs-escape.m3u8",
		base + "rel-escape.m3u8",
		base + "sibling.m3u8",
		base + "etc/passwd",
		base + "/etc/passwd",
		base + "%2fetc%2fpasswd",
		base + "notes.txt",
		base + "720p",
		base + "t/k.a.b/../../secret.m3u8",
		"/live/../secret.m3u8",
		"/live/%2e%2e/secret.m3u8",
		"/live/" + b.stream + "%2f..%2fsecret.m3u8",
		"/etc/passwd",
		"http://evil/" + base + "../secret.m3u8",
	}
	for _, target := range targets {
		code, body := b.raw(t, target)
		require.True(t, code == http.StatusBadRequest || code == http.StatusNotFound, "%s → %d", target, code)
		require.NotContains(t, body, secretMarker, target)
		require.NotContains(t, body, otherMarker, target)
		require.NotContains(t, body, hiddenMarker, target)
	}
}

func TestSignedStreamsEnforced(t *testing.T) {
	t.Parallel()
	signer := &playback.Signer{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"}
	b := setup(t, func(c *origin.Config) {
		c.Signer = signer
		c.Signed = func(context.Context, string) bool { return true }
	})
	tok, err := signer.Mint(b.stream, time.Minute, "")
	require.NoError(t, err)
	res, _ := b.get(t, playback.URLPath(b.stream, tok, "720p/1.m4s"), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, body := b.get(t, playback.URLPath(b.stream, "", "720p/1.m4s"), nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Contains(t, body, "missing")
	other, err := signer.Mint(b.other, time.Minute, "")
	require.NoError(t, err)
	res, _ = b.get(t, playback.URLPath(b.stream, other, "720p/1.m4s"), nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
}

// A signed stream on an origin without keys is refused, never served.
func TestSignedWithoutKeysFailsClosed(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *origin.Config) { c.Signed = func(context.Context, string) bool { return true } })
	res, body := b.get(t, playback.URLPath(b.stream, "", "720p/1.m4s"), nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.Contains(t, body, "DIONYSIA_PLAYBACK_KEYS")
	_, err := origin.New(origin.Config{DataDir: b.dir, Holds: func(string) bool { return true }})
	require.ErrorContains(t, err, "Signed is required")
}

// Policies caches a stream's policy for at most its TTL and fails closed:
// no policy, or a failed lookup, means signed.
func TestPoliciesFailClosed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	policy, fail, calls := "public", false, 0
	p := &origin.Policies{TTL: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Lookup: func(context.Context, string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if fail {
				return "", errors.New("redis down")
			}
			return policy, nil
		}}
	set := func(pol string, f bool) { mu.Lock(); policy, fail = pol, f; mu.Unlock() }
	ctx := context.Background()
	require.False(t, p.Signed(ctx, "s1"))
	require.False(t, p.Signed(ctx, "s1"), "cached")
	mu.Lock()
	require.Equal(t, 1, calls)
	mu.Unlock()
	set("signed", false)
	require.Eventually(t, func() bool { return p.Signed(ctx, "s1") }, 2*time.Second, 5*time.Millisecond, "a change applies after the TTL")
	set("", false)
	require.True(t, p.Signed(ctx, "s2"), "no policy: signed")
	set("public", true)
	require.True(t, p.Signed(ctx, "s3"), "lookup failed: signed")
	set("public", false)
	require.False(t, p.Signed(ctx, "s3"), "a failure is not cached")
}

func FuzzOriginPath(f *testing.F) {
	dir := f.TempDir()
	stream := "6f1c2c1e-8a4b-4b7e-9d9e-3c2f1a0b9c8d"
	other := "11111111-2222-4333-8444-555555555555"
	sd := filepath.Join(dir, stream)
	for name, content := range map[string]string{
		filepath.Join(sd, "index.m3u8"):         "#EXTM3U\n",
		filepath.Join(sd, "720p", "1.m4s"):      "seg",
		filepath.Join(sd, ".hidden.m3u8"):       hiddenMarker,
		filepath.Join(dir, "secret.m3u8"):       secretMarker,
		filepath.Join(dir, other, "index.m3u8"): otherMarker,
	} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink("../secret.m3u8", filepath.Join(sd, "link.m3u8")); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink("../"+other, filepath.Join(sd, "sib")); err != nil {
		f.Fatal(err)
	}
	h, err := origin.New(origin.Config{DataDir: dir, Holds: func(string) bool { return true },
		Signed: func(context.Context, string) bool { return false }})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"index.m3u8", "720p/1.m4s", "../secret.m3u8", "%2e%2e/secret.m3u8", "link.m3u8",
		"sib/index.m3u8", ".hidden.m3u8", "t/a.b.c/index.m3u8", "720p/%2e%2e/%2e%2e/secret.m3u8"} {
		f.Add("/live/" + stream + "/" + s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: o\r\n\r\n")))
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if strings.Contains(body, secretMarker) || strings.Contains(body, otherMarker) || strings.Contains(body, hiddenMarker) {
			t.Fatalf("%q leaked a file outside the stream: %d %q", target, rec.Code, body)
		}
		if rec.Code == http.StatusOK && !strings.HasPrefix(req.URL.EscapedPath(), "/live/"+stream+"/") {
			t.Fatalf("%q served outside the stream", target)
		}
	})
}
