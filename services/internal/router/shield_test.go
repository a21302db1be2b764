package router_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// countingOrigin is a real origin behind a reverse proxy that counts the
// playback requests reaching it, can hold them at a gate, and can answer
// 500 instead of forwarding.
type countingOrigin struct {
	URL     string
	count   atomic.Int64
	held    atomic.Int64
	failing atomic.Bool
	queries sync.Map // raw query -> number of requests

	mu   sync.Mutex
	gate chan struct{} // nil: pass at once
}

func newCountingOrigin(t *testing.T, originURL string) *countingOrigin {
	t.Helper()
	u, err := url.Parse(originURL)
	require.NoError(t, err)
	c := &countingOrigin{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.count.Add(1)
		n, _ := c.queries.LoadOrStore(r.URL.RawQuery, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		c.mu.Lock()
		gate := c.gate
		c.mu.Unlock()
		if gate != nil {
			c.held.Add(1)
			<-gate
		}
		if c.failing.Load() {
			http.Error(w, "origin exploded", http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// hold makes requests wait until the returned function is called.
func (c *countingOrigin) hold() (release func()) {
	gate := make(chan struct{})
	c.mu.Lock()
	c.gate = gate
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.gate = nil
		c.mu.Unlock()
		close(gate)
	}
}

// shieldSetup is setup with the shield on (size bytes) and the stream owned
// by worker A behind a counting origin.
func shieldSetup(t *testing.T, size int64, mutate func(*router.Config)) (*testBundle, *countingOrigin) {
	t.Helper()
	return shieldSetupWith(t, size, playback.PolicyPublic, mutate)
}

// shieldSetupWith owns the stream with policy before the router starts, so
// that the ownership events of the set-up do not reach the router (they
// would drop the first objects it stores, at a moment of their choosing).
func shieldSetupWith(t *testing.T, size int64, policy string, mutate func(*router.Config)) (*testBundle, *countingOrigin) {
	t.Helper()
	b := newBundle(t)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	co := newCountingOrigin(t, originA)
	b.own(t, "A", co.URL, policy)
	b.startRouter(t, router.ModeProxy, func(c *router.Config) {
		c.ShieldSize = size
		if mutate != nil {
			mutate(c)
		}
	})
	return b, co
}

// metric returns the value of a counter or gauge of reg (with the given
// label value, if any); 0 when it has not been written yet.
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func (b *testBundle) do(t *testing.T, method, p string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, b.router.URL+p, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, body
}

func TestShieldServesFromMemory(t *testing.T) {
	t.Parallel()
	b, co := shieldSetup(t, 64<<20, nil)
	seg := playback.URLPath(b.stream, "", "720p/1.m4s")
	want, err := os.ReadFile(filepath.Join(mediaDir, "720p", "1.m4s"))
	require.NoError(t, err)

	res, body := b.do(t, http.MethodGet, seg, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, router.ShieldMiss, res.Header.Get(router.CacheHeader))
	require.Equal(t, want, body)
	etag := res.Header.Get("ETag")
	require.NotEmpty(t, etag)

	res, body = b.do(t, http.MethodGet, seg, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader))
	require.Equal(t, want, body)
	require.Equal(t, etag, res.Header.Get("ETag"), "the origin's ETag")
	require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"))
	require.Equal(t, "video/iso.segment", res.Header.Get("Content-Type"))
	require.Equal(t, strconv.Itoa(len(want)), res.Header.Get("Content-Length"))
	require.Equal(t, "A", res.Header.Get(router.WorkerHeader))
	age, err := strconv.Atoi(res.Header.Get("Age"))
	require.NoError(t, err, "Age: %q", res.Header.Get("Age"))
	require.GreaterOrEqual(t, age, 0)

	cases := []struct {
		name   string
		method string
		hdr    map[string]string
		status int
		body   []byte
		check  func(*http.Response)
	}{
		{"range", http.MethodGet, map[string]string{"Range": "bytes=0-99"}, http.StatusPartialContent, want[:100],
			func(r *http.Response) {
				require.Equal(t, fmt.Sprintf("bytes 0-99/%d", len(want)), r.Header.Get("Content-Range"))
			}},
		{"suffix range", http.MethodGet, map[string]string{"Range": "bytes=-10"}, http.StatusPartialContent, want[len(want)-10:], nil},
		{"unsatisfiable range", http.MethodGet, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(want)+10)},
			http.StatusRequestedRangeNotSatisfiable, nil, func(r *http.Response) {
				require.Equal(t, fmt.Sprintf("bytes */%d", len(want)), r.Header.Get("Content-Range"))
			}},
		{"if-none-match", http.MethodGet, map[string]string{"If-None-Match": etag}, http.StatusNotModified, []byte{}, nil},
		{"if-none-match other", http.MethodGet, map[string]string{"If-None-Match": `"other"`}, http.StatusOK, want, nil},
		{"if-range stale", http.MethodGet, map[string]string{"Range": "bytes=0-9", "If-Range": `"other"`}, http.StatusOK, want, nil},
		{"head", http.MethodHead, nil, http.StatusOK, []byte{}, func(r *http.Response) {
			require.Equal(t, strconv.Itoa(len(want)), r.Header.Get("Content-Length"))
		}},
	}
	for _, tc := range cases {
		res, body := b.do(t, tc.method, seg, tc.hdr)
		require.Equal(t, tc.status, res.StatusCode, tc.name)
		require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader), tc.name)
		if tc.body != nil {
			require.Equal(t, tc.body, body, tc.name)
		}
		if tc.check != nil {
			tc.check(res)
		}
	}
	require.EqualValues(t, 1, co.count.Load(), "one upstream fetch for every answer")
	require.EqualValues(t, 1, metric(t, b.reg, "dionysia_router_shield_requests_total", router.ShieldMiss))
	require.EqualValues(t, 1+len(cases), metric(t, b.reg, "dionysia_router_shield_requests_total", router.ShieldHit))
	require.Greater(t, metric(t, b.reg, "dionysia_router_shield_bytes", ""), float64(len(want)))

	// A missing file is passed through, never stored.
	for range 2 {
		res, _ := b.do(t, http.MethodGet, playback.URLPath(b.stream, "", "720p/999.m4s"), nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Equal(t, router.ShieldMiss, res.Header.Get(router.CacheHeader))
	}
	require.EqualValues(t, 3, co.count.Load())
}

func TestShieldCoalescesFetches(t *testing.T) {
	t.Parallel()
	b, co := shieldSetup(t, 64<<20, nil)
	seg := b.router.URL + playback.URLPath(b.stream, "", "720p/2.m4s")
	want, err := os.ReadFile(filepath.Join(mediaDir, "720p", "2.m4s"))
	require.NoError(t, err)
	release := co.hold()

	// The first requester gives up while the fetch is held: the others
	// still get the object.
	leaderCtx, cancelLeader := context.WithCancel(t.Context())
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		req, _ := http.NewRequestWithContext(leaderCtx, http.MethodGet, seg, nil)
		if res, err := b.client.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return co.held.Load() == 1 }, 30*time.Second, 5*time.Millisecond)

	const n = 8
	type answer struct {
		status int
		body   []byte
		err    error
	}
	answers := make(chan answer, n)
	for range n {
		go func() {
			res, err := b.client.Get(seg)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			answers <- answer{res.StatusCode, body, err}
		}()
	}
	require.Eventually(t, func() bool {
		return metric(t, b.reg, "dionysia_router_shield_requests_total", router.ShieldCoalesced) == n
	}, 30*time.Second, 5*time.Millisecond, "requests did not join the fetch")
	cancelLeader()
	<-leaderDone
	release()
	for range n {
		a := <-answers
		require.NoError(t, a.err)
		require.Equal(t, http.StatusOK, a.status)
		require.Equal(t, want, a.body)
	}
	require.EqualValues(t, 1, co.count.Load(), "one upstream fetch for all of them")
	res, _ := b.get(t, playback.URLPath(b.stream, "", "720p/2.m4s"))
	require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader), "the abandoned fetch was stored")
	require.EqualValues(t, 1, co.count.Load())
}

func TestShieldEvictsWithinItsBound(t *testing.T) {
	t.Parallel()
	var files []string
	var largest, total int64
	require.NoError(t, filepath.WalkDir(mediaDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".m4s" {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(mediaDir, p)
		files = append(files, filepath.ToSlash(rel))
		largest = max(largest, info.Size())
		total += info.Size()
		return err
	}))
	// Room for about half the files (one object may take a quarter).
	bound := max(total/2, 4*(largest+1024))
	require.Less(t, bound, total+int64(len(files))*1024, "the files must not all fit")
	b, co := shieldSetup(t, bound, nil)
	for _, f := range files {
		res, _ := b.get(t, playback.URLPath(b.stream, "", f))
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.LessOrEqual(t, metric(t, b.reg, "dionysia_router_shield_bytes", ""), float64(bound))
	}
	require.Greater(t, metric(t, b.reg, "dionysia_router_shield_evictions_total", ""), float64(0))
	// The least recently used (the first) is gone, the last is there.
	res, _ := b.get(t, playback.URLPath(b.stream, "", files[len(files)-1]))
	require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader))
	res, _ = b.get(t, playback.URLPath(b.stream, "", files[0]))
	require.Equal(t, router.ShieldMiss, res.Header.Get(router.CacheHeader))
	require.EqualValues(t, len(files)+1, co.count.Load())
}

func TestShieldServesNothingStaleAfterFailover(t *testing.T) {
	t.Parallel()
	b, coA := shieldSetup(t, 64<<20, nil)
	// Worker B's tree has a different 720p/0.m4s under the same name (a
	// segment number it rewrote after taking over).
	dataB := t.TempDir()
	streamB := filepath.Join(dataB, b.stream)
	require.NoError(t, os.CopyFS(streamB, os.DirFS(mediaDir)))
	rewritten := []byte("segment 0 as worker B wrote it")
	require.NoError(t, os.WriteFile(filepath.Join(streamB, "720p", "0.m4s"), rewritten, 0o644))
	originB, _ := startOrigin(t, dataB, "B", b.prefix)

	seg := playback.URLPath(b.stream, "", "720p/0.m4s")
	list := playback.URLPath(b.stream, "", "720p/index.m3u8")
	for range 2 {
		b.get(t, seg)
		b.get(t, list)
	}
	res, body := b.get(t, seg)
	require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader))
	require.NotEqual(t, rewritten, body)
	require.LessOrEqual(t, coA.count.Load(), int64(3), "segment once, playlist at most twice")

	// A's lease vanishes (a crash), B acquires: a new owner and token.
	require.NoError(t, b.rdb.Del(t.Context(), b.store.OwnerKey(b.stream)).Err())
	b.own(t, "B", originB, playback.PolicyPublic)
	require.Eventually(t, func() bool {
		res, _ := b.get(t, list)
		return res.Header.Get(router.WorkerHeader) == "B"
	}, 30*time.Second, 10*time.Millisecond, "traffic did not move to B")
	res, body = b.get(t, seg)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "B", res.Header.Get(router.WorkerHeader))
	require.Equal(t, router.ShieldMiss, res.Header.Get(router.CacheHeader))
	require.Equal(t, rewritten, body)
	res, body = b.get(t, seg)
	require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader))
	require.Equal(t, rewritten, body)
}

func TestShieldPlaylistsExpire(t *testing.T) {
	t.Parallel()
	b, co := shieldSetup(t, 64<<20, func(c *router.Config) { c.PlaylistTTL = 100 * time.Millisecond })
	list := playback.URLPath(b.stream, "", "720p/index.m3u8")
	res, _ := b.get(t, list)
	require.Equal(t, router.ShieldMiss, res.Header.Get(router.CacheHeader))
	require.Equal(t, "public, max-age=1", res.Header.Get("Cache-Control"), "as the origin sent it")
	// It is fetched again once its TTL ran out (however slow this machine).
	require.Eventually(t, func() bool {
		res, _ := b.get(t, list)
		return res.Header.Get(router.CacheHeader) == router.ShieldMiss
	}, 30*time.Second, 20*time.Millisecond, "the playlist never expired")
	require.GreaterOrEqual(t, co.count.Load(), int64(2))

	// A policy or ownership event drops the stream's objects at once:
	// afterwards the segment is fetched again.
	seg := playback.URLPath(b.stream, "", "720p/0.m4s")
	b.get(t, seg)
	res, _ = b.get(t, seg)
	require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader))
	changed, err := b.store.SetPolicy(t.Context(), b.stream, playback.PolicyPublic)
	require.NoError(t, err)
	require.True(t, changed)
	require.Eventually(t, func() bool {
		return metric(t, b.reg, "dionysia_router_shield_objects", "") == 0
	}, 30*time.Second, 10*time.Millisecond, "the event did not drop the stream's objects")
	res, _ = b.get(t, seg)
	require.Equal(t, router.ShieldMiss, res.Header.Get(router.CacheHeader))
}

func TestShieldRefusesCachedObjectsWithoutToken(t *testing.T) {
	t.Parallel()
	b, co := shieldSetupWith(t, 64<<20, playback.PolicySigned, nil)
	tok, err := b.signer.Mint(b.stream, time.Hour, "")
	require.NoError(t, err)
	for _, file := range []string{"720p/0.m4s", "720p/index.m3u8"} {
		res, _ := b.get(t, playback.URLPath(b.stream, tok, file))
		require.Equal(t, http.StatusOK, res.StatusCode)
		res, _ = b.get(t, playback.URLPath(b.stream, tok, file))
		require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader), file)

		expired, err := b.signer.MintAt(b.stream, time.Now().Add(-time.Second), "")
		require.NoError(t, err)
		other, err := b.signer.Mint("00000000-0000-4000-8000-000000000000", time.Hour, "")
		require.NoError(t, err)
		for why, p := range map[string]string{
			"no token":     playback.URLPath(b.stream, "", file),
			"tampered":     playback.URLPath(b.stream, tok[:len(tok)-2]+"AA", file),
			"expired":      playback.URLPath(b.stream, expired, file),
			"other stream": playback.URLPath(b.stream, other, file),
		} {
			res, body := b.get(t, p)
			require.Equal(t, http.StatusForbidden, res.StatusCode, "%s: %s", file, why)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			require.Empty(t, res.Header.Get(router.CacheHeader))
			require.Contains(t, string(body), `"status":403`)
		}
	}
	require.LessOrEqual(t, co.count.Load(), int64(3), "the refusals never reached the origin")
}

func TestShieldDoesNotStoreUpstreamErrors(t *testing.T) {
	t.Parallel()
	b, co := shieldSetup(t, 64<<20, nil)
	seg := playback.URLPath(b.stream, "", "360p/1.m4s")
	co.failing.Store(true)
	res, body := b.get(t, seg)
	require.Equal(t, http.StatusInternalServerError, res.StatusCode, "the origin's answer, passed through")
	require.Contains(t, string(body), "origin exploded")
	require.EqualValues(t, 1, metric(t, b.reg, "dionysia_router_shield_requests_total", router.ShieldPass))
	co.failing.Store(false)
	res, _ = b.get(t, seg)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, router.ShieldMiss, res.Header.Get(router.CacheHeader))
	res, _ = b.get(t, seg)
	require.Equal(t, router.ShieldHit, res.Header.Get(router.CacheHeader))
}

func TestShieldCoalescesBlockingPlaylistReloads(t *testing.T) {
	t.Parallel()
	b, co := shieldSetup(t, 64<<20, nil)
	pl := b.router.URL + playback.URLPath(b.stream, "", "720p/index.m3u8")
	release := co.hold()
	const n = 20
	answers := make(chan int, 2*n)
	for i := range 2 * n {
		// Half wait for part 1 of segment 5, half for part 2; the parameters
		// come in any order and with noise the origin does not need.
		q := "?_HLS_msn=5&_HLS_part=1"
		if i%2 == 1 {
			q = "?_HLS_part=2&utm=x&_HLS_msn=5"
		}
		go func() {
			res, err := b.client.Get(pl + q)
			if err != nil {
				answers <- 0
				return
			}
			res.Body.Close()
			answers <- res.StatusCode
		}()
	}
	require.Eventually(t, func() bool {
		return metric(t, b.reg, "dionysia_router_shield_requests_total", router.ShieldCoalesced) == 2*n-2
	}, 30*time.Second, 5*time.Millisecond, "waiting viewers did not join one upstream request per part")
	release()
	for range 2 * n {
		require.Equal(t, http.StatusOK, <-answers)
	}
	require.EqualValues(t, 2, co.count.Load(), "one upstream request per part")
	for _, q := range []string{"_HLS_msn=5&_HLS_part=1", "_HLS_msn=5&_HLS_part=2"} {
		v, ok := co.queries.Load(q)
		require.True(t, ok, "the origin was asked %q", q)
		require.EqualValues(t, 1, v.(*atomic.Int64).Load())
	}
	// A plain reload is another object.
	res, _ := b.get(t, playback.URLPath(b.stream, "", "720p/index.m3u8"))
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.EqualValues(t, 3, co.count.Load())
}

func TestStreamedSegmentsPassThrough(t *testing.T) {
	t.Parallel()
	// An origin streaming a low-latency segment while it is made (the
	// worker's origin does this for the open segment).
	next := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/iso.segment")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Dionysia-Streaming", "1")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("AAAA"))
		_ = http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("BBBB"))
	}))
	t.Cleanup(srv.Close)
	b := newBundle(t)
	b.own(t, "A", srv.URL, playback.PolicyPublic)
	b.startRouter(t, router.ModeProxy, func(c *router.Config) { c.ShieldSize = 64 << 20 })

	for range 2 { // neither answer is stored
		res, err := b.client.Get(b.router.URL + playback.URLPath(b.stream, "", "720p/103.m4s"))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		buf := make([]byte, 4)
		_, err = io.ReadFull(res.Body, buf)
		require.NoError(t, err)
		require.Equal(t, "AAAA", string(buf), "the first part reaches the player before the segment is complete")
		next <- struct{}{}
		rest, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, "BBBB", string(rest))
		res.Body.Close()
	}
}
