package router_test

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"github.com/dionysia/dionysia/pkg/testkit"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var (
	keyV1   = base64.StdEncoding.EncodeToString([]byte("router-test-key-v1-0123456789abc"))
	keyV2   = base64.StdEncoding.EncodeToString([]byte("router-test-key-v2-0123456789abc"))
	keysEnv = "DIONYSIA_PLAYBACK_KEYS=v2:" + keyV2 + ",v1:" + keyV1
)

type testBundle struct {
	rdb     *redis.Client
	store   *ownership.Store
	prefix  string
	dataDir string
	stream  string
	session string
	signer  *playback.Signer
	reg     *prometheus.Registry
	router  *httptest.Server
	client  *http.Client
}

// setup links a stream directory to the generated media, and starts a router
// (in mode) in front of Redis with its ownership watcher running.
func setup(t *testing.T, mode string, mutate func(*router.Config)) *testBundle {
	t.Helper()
	b := newBundle(t)
	b.startRouter(t, mode, mutate)
	return b
}

// newBundle is setup without the router.
func newBundle(t *testing.T) *testBundle {
	t.Helper()
	r := testkit.RedisPrefix(t)
	b := &testBundle{
		rdb: r.Client, prefix: r.Prefix,
		dataDir: t.TempDir(), stream: uuid.NewString(), session: uuid.NewString(),
		reg: prometheus.NewRegistry(),
	}
	var err error
	b.store = ownership.New(b.rdb, ownership.Config{Prefix: b.prefix})
	require.NoError(t, os.Symlink(mediaDir, filepath.Join(b.dataDir, b.stream)))
	b.signer, err = playback.ParseKeys("v2:" + keyV2 + ",v1:" + keyV1)
	require.NoError(t, err)
	b.client = &http.Client{Timeout: 10 * time.Second}
	return b
}

// startRouter starts the bundle's router and waits for its subscription.
func (b *testBundle) startRouter(t *testing.T, mode string, mutate func(*router.Config)) {
	t.Helper()
	cfg := router.Config{
		Redis: b.rdb, Prefix: b.prefix, Mode: mode, Signer: b.signer, Registry: b.reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShieldSize: 64 << 20, // as deployed
	}
	if mutate != nil {
		mutate(&cfg)
	}
	rt, err := router.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(ctx) }()
	b.router = httptest.NewServer(rt)
	t.Cleanup(func() { b.router.Close(); cancel(); <-done })
	waitSubscribed(t, b.rdb, b.store.Channel())
	// The router drops its caches when its subscription is confirmed: wait
	// for that, or it may drop the first objects a test stores.
	require.Eventually(t, func() bool {
		return metric(t, b.reg, "dionysia_router_ownership_resets_total", "") >= 1
	}, 30*time.Second, 5*time.Millisecond, "router did not see its subscription")
}

func waitSubscribed(t *testing.T, rdb *redis.Client, channel string) {
	t.Helper()
	require.Eventually(t, func() bool {
		n, err := rdb.PubSubNumSub(context.Background(), channel).Result()
		return err == nil && n[channel] > 0
	}, 30*time.Second, 10*time.Millisecond, "router did not subscribe")
}

// own assigns the stream's session with policy (as the control plane does)
// and acquires it for worker.
func (b *testBundle) own(t *testing.T, worker, originURL, policy string) ownership.Lease {
	t.Helper()
	require.NoError(t, b.store.Assign(t.Context(), b.stream, b.session, policy))
	l, err := b.store.Acquire(t.Context(), b.stream, b.session, ownership.Holder{WorkerID: worker, OriginURL: originURL})
	require.NoError(t, err)
	return l
}

func (b *testBundle) get(t *testing.T, p string) (*http.Response, []byte) {
	t.Helper()
	res, err := b.client.Get(b.router.URL + p)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, body
}

// wantType is the Content-Type the origin must send for a file.
func wantType(file string) string {
	audio := strings.HasPrefix(file, "audio/")
	switch path.Ext(file) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".mpd":
		return "application/dash+xml"
	case ".mp4":
		if audio {
			return "audio/mp4"
		}
		return "video/mp4"
	case ".m4s":
		if audio {
			return "audio/mp4"
		}
		return "video/iso.segment"
	}
	return "?"
}

var uriAttr = regexp.MustCompile(`URI="([^"]+)"`)

// walkHLS follows a multivariant playlist the way a player does: every
// variant and rendition playlist, every init segment and every media segment,
// resolving relative URIs against the playlist's URL. It returns the number
// of files fetched.
func (b *testBundle) walkHLS(t *testing.T, startPath string) int {
	t.Helper()
	seen := map[string]bool{}
	var visit func(u *url.URL)
	visit = func(u *url.URL) {
		if seen[u.String()] {
			return
		}
		seen[u.String()] = true
		res, err := b.client.Get(u.String())
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", u, body)
		file := fileOf(t, u)
		require.Equal(t, wantType(file), res.Header.Get("Content-Type"), u.String())
		require.NotEmpty(t, res.Header.Get(router.WorkerHeader))
		want, err := os.ReadFile(filepath.Join(mediaDir, filepath.FromSlash(file)))
		require.NoError(t, err)
		require.Equal(t, len(want), len(body), u.String())
		if path.Ext(file) != ".m3u8" {
			return
		}
		for _, line := range strings.Split(string(body), "\n") {
			line = strings.TrimSpace(line)
			var refs []string
			if strings.HasPrefix(line, "#") {
				for _, m := range uriAttr.FindAllStringSubmatch(line, -1) {
					refs = append(refs, m[1])
				}
			} else if line != "" {
				refs = append(refs, line)
			}
			for _, ref := range refs {
				next, err := res.Request.URL.Parse(ref)
				require.NoError(t, err)
				visit(next)
			}
		}
	}
	start, err := url.Parse(b.router.URL + startPath)
	require.NoError(t, err)
	visit(start)
	return len(seen)
}

// fileOf returns the file path within the stream of a playback URL.
func fileOf(t *testing.T, u *url.URL) string {
	t.Helper()
	p, err := playback.ParsePath(u.EscapedPath())
	require.NoError(t, err, u.String())
	return p.File
}

type mpd struct {
	Duration string `xml:"mediaPresentationDuration,attr"`
	Sets     []struct {
		Reps []struct {
			ID       string `xml:"id,attr"`
			Template struct {
				Init        string `xml:"initialization,attr"`
				Media       string `xml:"media,attr"`
				StartNumber int    `xml:"startNumber,attr"`
			} `xml:"SegmentTemplate"`
		} `xml:"Representation"`
	} `xml:"Period>AdaptationSet"`
}

// walkDASH fetches the MPD and, for every representation, its init segment
// and media segments from startNumber until the origin has no more.
func (b *testBundle) walkDASH(t *testing.T, mpdPath string) int {
	t.Helper()
	base, err := url.Parse(b.router.URL + mpdPath)
	require.NoError(t, err)
	res, err := b.client.Get(base.String())
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/dash+xml", res.Header.Get("Content-Type"))
	var m mpd
	require.NoError(t, xml.Unmarshal(body, &m))
	fetched := 1
	for _, set := range m.Sets {
		for _, rep := range set.Reps {
			tpl := rep.Template
			init := strings.ReplaceAll(tpl.Init, "$RepresentationID$", rep.ID)
			u, err := res.Request.URL.Parse(init)
			require.NoError(t, err)
			r, err := b.client.Get(u.String())
			require.NoError(t, err)
			r.Body.Close()
			require.Equal(t, http.StatusOK, r.StatusCode, u.String())
			require.Equal(t, "video/mp4", r.Header.Get("Content-Type"))
			fetched++
			segs := 0
			for n := tpl.StartNumber; n < tpl.StartNumber+20; n++ {
				name := strings.ReplaceAll(strings.ReplaceAll(tpl.Media, "$RepresentationID$", rep.ID), "$Number$", fmt.Sprint(n))
				u, err := res.Request.URL.Parse(name)
				require.NoError(t, err)
				r, err := b.client.Get(u.String())
				require.NoError(t, err)
				r.Body.Close()
				if r.StatusCode == http.StatusNotFound {
					break
				}
				require.Equal(t, http.StatusOK, r.StatusCode, u.String())
				require.Equal(t, "video/iso.segment", r.Header.Get("Content-Type"))
				segs++
				fetched++
			}
			require.GreaterOrEqual(t, segs, 3, "representation %s", rep.ID)
		}
	}
	return fetched
}

func TestPlaybackThroughRouter(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	require.NoError(t, b.store.Assign(t.Context(), b.stream, b.session, playback.PolicyPublic))
	b.own(t, "A", originA, playback.PolicyPublic)

	n := b.walkHLS(t, playback.URLPath(b.stream, "", "index.m3u8"))
	// index + 3 playlists + 3 inits + 3+3+4 segments; MPD + 2 inits + 3+4 segments
	require.Equal(t, 17, n)
	require.Equal(t, 10, b.walkDASH(t, playback.URLPath(b.stream, "", "dash/manifest.mpd")))

	res, body := b.get(t, playback.URLPath(b.stream, "", "720p/index.m3u8"))
	require.Equal(t, "A", res.Header.Get(router.WorkerHeader))
	require.Equal(t, "public, max-age=1", res.Header.Get("Cache-Control"))
	require.Contains(t, string(body), "#EXT-X-MAP")

	// Range and conditional requests are answered (from the shield).
	req, _ := http.NewRequest(http.MethodGet, b.router.URL+playback.URLPath(b.stream, "", "720p/0.m4s"), nil)
	req.Header.Set("Range", "bytes=0-99")
	rres, err := b.client.Do(req)
	require.NoError(t, err)
	rbody, _ := io.ReadAll(rres.Body)
	rres.Body.Close()
	require.Equal(t, http.StatusPartialContent, rres.StatusCode)
	require.Len(t, rbody, 100)
	require.Equal(t, "public, max-age=31536000, immutable", rres.Header.Get("Cache-Control"))
	req.Header.Del("Range")
	req.Header.Set("If-None-Match", rres.Header.Get("ETag"))
	rres, err = b.client.Do(req)
	require.NoError(t, err)
	rres.Body.Close()
	require.Equal(t, http.StatusNotModified, rres.StatusCode)

	// Operational endpoints.
	res, _ = b.get(t, "/healthz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = b.get(t, "/readyz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, body = b.get(t, "/metrics")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(body), `dionysia_router_requests_total{outcome="proxied"}`)
	require.Contains(t, string(body), `dionysia_router_cache_total{result="hit"}`)
	require.Contains(t, string(body), `dionysia_router_upstream_seconds_bucket`)
}

func TestRedirectMode(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeRedirect, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	b.own(t, "A", originA, playback.PolicyPublic)

	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(b.router.URL + playback.URLPath(b.stream, "", "index.m3u8"))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusFound, res.StatusCode)
	require.Equal(t, originA+playback.URLPath(b.stream, "", "index.m3u8"), res.Header.Get("Location"))

	// A player following the redirect reads the rest from the origin directly.
	require.Equal(t, 17, b.walkHLS(t, playback.URLPath(b.stream, "", "index.m3u8")))
}

func TestSignedPlayback(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	require.NoError(t, b.store.Assign(t.Context(), b.stream, b.session, playback.PolicySigned))
	b.own(t, "A", originA, playback.PolicySigned)

	tok, err := b.signer.Mint(b.stream, time.Hour, "")
	require.NoError(t, err)
	require.Equal(t, 17, b.walkHLS(t, playback.URLPath(b.stream, tok, "index.m3u8")))
	require.Equal(t, 10, b.walkDASH(t, playback.URLPath(b.stream, tok, "dash/manifest.mpd")))

	forbidden := func(p, why string) {
		t.Helper()
		res, body := b.get(t, p)
		require.Equal(t, http.StatusForbidden, res.StatusCode, why)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
		require.Contains(t, string(body), `"status":403`)
	}
	forbidden(playback.URLPath(b.stream, "", "720p/1.m4s"), "guessed URL without a token")
	forbidden(playback.URLPath(b.stream, "", "index.m3u8"), "playlist without a token")
	forbidden(playback.URLPath(b.stream, tok[:len(tok)-2]+"AA", "index.m3u8"), "tampered")
	expired, err := b.signer.MintAt(b.stream, time.Now().Add(-time.Second), "")
	require.NoError(t, err)
	forbidden(playback.URLPath(b.stream, expired, "index.m3u8"), "expired")
	other, err := b.signer.Mint(uuid.NewString(), time.Hour, "")
	require.NoError(t, err)
	forbidden(playback.URLPath(b.stream, other, "index.m3u8"), "another stream's token")
	stranger, err := playback.ParseKeys("v1:" + base64.StdEncoding.EncodeToString([]byte("not-the-router-key-0123456789abc")))
	require.NoError(t, err)
	forged, err := stranger.Mint(b.stream, time.Hour, "")
	require.NoError(t, err)
	forbidden(playback.URLPath(b.stream, forged, "index.m3u8"), "unknown key")
	boundElsewhere, err := b.signer.Mint(b.stream, time.Hour, "192.0.2.1")
	require.NoError(t, err)
	forbidden(playback.URLPath(b.stream, boundElsewhere, "index.m3u8"), "bound to another viewer")

	// Bound to this viewer (loopback), and signed with the older key during rotation.
	bound, err := b.signer.Mint(b.stream, time.Hour, "127.0.0.1")
	require.NoError(t, err)
	res, _ := b.get(t, playback.URLPath(b.stream, bound, "index.m3u8"))
	require.Equal(t, http.StatusOK, res.StatusCode)
	oldSigner, err := playback.ParseKeys("v1:" + keyV1)
	require.NoError(t, err)
	oldTok, err := oldSigner.Mint(b.stream, time.Hour, "")
	require.NoError(t, err)
	res, _ = b.get(t, playback.URLPath(b.stream, oldTok, "720p/0.m4s"))
	require.Equal(t, http.StatusOK, res.StatusCode, "a token of the previous key is accepted")
}

func TestSignedRedirectEnforcedByOrigin(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeRedirect, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	b.own(t, "A", originA, playback.PolicySigned)
	tok, err := b.signer.Mint(b.stream, time.Hour, "")
	require.NoError(t, err)
	require.Equal(t, 17, b.walkHLS(t, playback.URLPath(b.stream, tok, "index.m3u8")))

	res, _ := b.get(t, playback.URLPath(b.stream, "", "index.m3u8"))
	require.Equal(t, http.StatusForbidden, res.StatusCode, "router refuses before redirecting")
	direct, err := http.Get(originA + playback.URLPath(b.stream, "", "720p/0.m4s"))
	require.NoError(t, err)
	direct.Body.Close()
	require.Equal(t, http.StatusForbidden, direct.StatusCode, "a guessed origin URL without a token is refused")
}

// A policy change on a live stream (ownership.Store.SetPolicy, what the API's
// PATCH does) applies within 2 s at the router and at the origin, in both
// modes and both directions.
func TestPolicyChangeAppliesLive(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{router.ModeProxy, router.ModeRedirect} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := setup(t, mode, nil)
			originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
			b.own(t, "A", originA, playback.PolicyPublic)
			tok, err := b.signer.Mint(b.stream, time.Hour, "127.0.0.1")
			require.NoError(t, err)
			open := playback.URLPath(b.stream, "", "720p/0.m4s")
			withToken := playback.URLPath(b.stream, tok, "720p/0.m4s")
			status := func(base, p string) int {
				res, err := b.client.Get(base + p)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode
			}
			require.Equal(t, http.StatusOK, status(b.router.URL, open))
			require.Equal(t, http.StatusOK, status(originA, open))

			_, err = b.store.SetPolicy(t.Context(), b.stream, playback.PolicySigned)
			require.NoError(t, err)
			changed := time.Now()
			require.Eventually(t, func() bool {
				return status(b.router.URL, open) == http.StatusForbidden && status(originA, open) == http.StatusForbidden
			}, 2*time.Second, 20*time.Millisecond, "signed must apply within 2 s at router and origin")
			t.Logf("signed applied after %s", time.Since(changed).Round(time.Millisecond))
			res, body := b.get(t, open)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			require.Contains(t, string(body), "token missing")
			require.Equal(t, http.StatusOK, status(b.router.URL, withToken), "an IP-bound token through the router")

			_, err = b.store.SetPolicy(t.Context(), b.stream, playback.PolicyPublic)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				return status(b.router.URL, open) == http.StatusOK && status(originA, open) == http.StatusOK
			}, 2*time.Second, 20*time.Millisecond, "public again within 2 s")
		})
	}
}

// A router whose invalidation events are lost (no Run) and whose cache TTL is
// long still stops serving a stream switched to signed within 2 s: public
// states are never cached for longer than a second.
func TestPolicyChangeWithoutEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	rt, err := router.New(router.Config{Redis: b.rdb, Prefix: b.prefix, CacheTTL: time.Minute, Signer: b.signer,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	srv := httptest.NewServer(rt) // no Run: no invalidation messages
	t.Cleanup(srv.Close)
	b.own(t, "A", originA, playback.PolicyPublic)
	p := srv.URL + playback.URLPath(b.stream, "", "index.m3u8")
	res, err := b.client.Get(p)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	_, err = b.store.SetPolicy(t.Context(), b.stream, playback.PolicySigned)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		res, err := b.client.Get(p)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusForbidden
	}, 2*time.Second, 20*time.Millisecond)
}

// A live stream whose policy is missing from Redis (written by nobody, or
// lost) is treated as signed.
func TestMissingPolicyFailsClosed(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	b.own(t, "A", originA, playback.PolicyPublic)
	require.NoError(t, b.rdb.Del(t.Context(), b.store.PolicyKey(b.stream)).Err())
	require.Eventually(t, func() bool {
		res, _ := b.get(t, playback.URLPath(b.stream, "", "index.m3u8"))
		return res.StatusCode == http.StatusForbidden
	}, 2*time.Second, 20*time.Millisecond)
	direct, err := http.Get(originA + playback.URLPath(b.stream, "", "index.m3u8"))
	require.NoError(t, err)
	direct.Body.Close()
	require.Equal(t, http.StatusForbidden, direct.StatusCode)
	tok, err := b.signer.Mint(b.stream, time.Hour, "")
	require.NoError(t, err)
	res, _ := b.get(t, playback.URLPath(b.stream, tok, "index.m3u8"))
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestOwnershipChangeMovesTraffic(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	originB, _ := startOrigin(t, b.dataDir, "B", b.prefix)
	ctx := t.Context()
	progress := b.prefix + "stream:" + b.stream + ":progress"

	a := b.own(t, "A", originA, playback.PolicyPublic)
	p := playback.URLPath(b.stream, "", "index.m3u8")
	res, _ := b.get(t, p)
	require.Equal(t, "A", res.Header.Get(router.WorkerHeader))
	res, _ = b.get(t, p) // now cached for a second
	require.Equal(t, "A", res.Header.Get(router.WorkerHeader))

	// A's lease expires without any message (a crashed worker)...
	require.NoError(t, b.rdb.Del(ctx, b.store.OwnerKey(b.stream)).Err())
	start := time.Now()
	// ...and B takes over: the published change moves traffic.
	bl := b.own(t, "B", originB, playback.PolicyPublic)
	require.Eventually(t, func() bool {
		res, _ := b.get(t, p)
		return res.Header.Get(router.WorkerHeader) == "B"
	}, 30*time.Second, 10*time.Millisecond, "traffic did not move to B")
	t.Logf("traffic moved to B after %s", time.Since(start))
	require.Equal(t, http.StatusOK, res.StatusCode)

	// The stale owner's writes are refused, B's accepted.
	require.ErrorIs(t, b.store.Renew(ctx, a), ownership.ErrLost)
	_, err := b.store.FencedDo(ctx, a, "SET", progress, "A")
	require.ErrorIs(t, err, ownership.ErrFenced)
	_, err = b.store.FencedDo(ctx, bl, "SET", progress, "B")
	require.NoError(t, err)
	require.Equal(t, "B", b.rdb.Get(ctx, progress).Val())
	require.ErrorIs(t, b.store.Release(ctx, a), ownership.ErrLost)
	o, ok, err := b.store.Lookup(ctx, b.stream)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "B", o.WorkerID)
}

// Without the pub/sub message (a router with a long cache and no watcher),
// the old origin's "not held" answer makes the router look the owner up again.
func TestStaleCacheFollowsNotHeld(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	originB, _ := startOrigin(t, b.dataDir, "B", b.prefix)
	rt, err := router.New(router.Config{Redis: b.rdb, Prefix: b.prefix, CacheTTL: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	srv := httptest.NewServer(rt) // no Run: no invalidation messages
	t.Cleanup(srv.Close)

	a := b.own(t, "A", originA, playback.PolicyPublic)
	p := srv.URL + playback.URLPath(b.stream, "", "index.m3u8")
	res, err := b.client.Get(p)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, "A", res.Header.Get(router.WorkerHeader))

	require.NoError(t, b.store.Release(t.Context(), a))
	b.own(t, "B", originB, playback.PolicyPublic)
	res, err = b.client.Get(p)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "B", res.Header.Get(router.WorkerHeader))
}

func TestNotLiveAndFailoverWindow(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	p := playback.URLPath(b.stream, "", "index.m3u8")

	res, body := b.get(t, p)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.Contains(t, string(body), "not live")

	// The assignment event clears the negative cache at once.
	require.NoError(t, b.store.Assign(t.Context(), b.stream, b.session, playback.PolicyPublic))
	require.Eventually(t, func() bool {
		res, _ := b.get(t, p)
		return res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "1"
	}, time.Second, 10*time.Millisecond, "failover window must answer 503 with Retry-After")

	lease := b.own(t, "A", originA, playback.PolicyPublic)
	require.Eventually(t, func() bool {
		res, _ := b.get(t, p)
		return res.StatusCode == http.StatusOK
	}, time.Second, 10*time.Millisecond)

	// Session ends: owner released and assignment gone → 404 again.
	require.NoError(t, b.store.Release(t.Context(), lease))
	_, err := b.store.Unassign(t.Context(), b.stream, b.session)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		res, _ := b.get(t, p)
		return res.StatusCode == http.StatusNotFound
	}, time.Second, 10*time.Millisecond)

	res, _ = b.get(t, playback.URLPath(uuid.NewString(), "", "index.m3u8"))
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestOriginDownFailsFast(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, stopA := startOrigin(t, b.dataDir, "A", b.prefix)
	b.own(t, "A", originA, playback.PolicyPublic)
	p := playback.URLPath(b.stream, "", "index.m3u8")
	res, _ := b.get(t, p)
	require.Equal(t, http.StatusOK, res.StatusCode)

	stopA() // the worker dies; its lease is still live in Redis
	// (the index it served may still come from the shield for its short
	// TTL: ask for a file it has not served)
	p = playback.URLPath(b.stream, "", "720p/index.m3u8")
	start := time.Now()
	res, body := b.get(t, p)
	t.Logf("503 for a dead origin after %s", time.Since(start).Round(time.Millisecond))
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(body))
	require.Equal(t, "1", res.Header.Get("Retry-After"))

	// An owner whose origin was never reachable (closed port) fails as fast.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close()
	require.NoError(t, b.rdb.Del(t.Context(), b.store.OwnerKey(b.stream)).Err())
	b.own(t, "C", dead, playback.PolicyPublic)
	start = time.Now()
	require.Eventually(t, func() bool {
		res, _ := b.get(t, p)
		return res.StatusCode == http.StatusServiceUnavailable
	}, 30*time.Second, 10*time.Millisecond)
	t.Logf("503 for an unreachable origin after %s", time.Since(start).Round(time.Millisecond))
}

func TestTraversalThroughRouter(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	require.NoError(t, os.WriteFile(filepath.Join(b.dataDir, "secret.m3u8"), []byte("SECRET"), 0o644))
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	b.own(t, "A", originA, playback.PolicyPublic)
	base := "/live/" + b.stream + "/"
	for _, target := range []string{
		base + "../secret.m3u8", base + "%2e%2e/secret.m3u8", base + "%2E%2E%2Fsecret.m3u8",
		base + "720p/../../secret.m3u8", base + "..%5csecret.m3u8", base + "secret.m3u8%00",
		base + ".hidden", base + "%2fetc%2fpasswd", base + "/etc/passwd", base + "t/../../secret.m3u8",
		"/live/%2e%2e/secret.m3u8", "/live/" + b.stream + "%2f..%2fsecret.m3u8",
	} {
		conn, err := net.DialTimeout("tcp", b.router.Listener.Addr().String(), time.Second)
		require.NoError(t, err)
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n", target)
		require.NoError(t, err)
		raw, _ := io.ReadAll(conn)
		conn.Close()
		status := strings.SplitN(string(raw), " ", 3)
		require.GreaterOrEqual(t, len(status), 2, target)
		require.Contains(t, []string{"400", "404"}, status[1], "%s → %s", target, status[1])
		require.NotContains(t, string(raw), "SECRET", target)
	}
}
