package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/problem"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

const workerSecret = "router-test-worker-secret"

// assetAPI plays the API's side of the VOD playback contract (pkg/job/vod.go):
// GET /internal/v1/assets/{id}/playback with the worker secret.
type assetAPI struct {
	srv *httptest.Server

	mu     sync.Mutex
	assets map[uuid.UUID]job.VODPlayback
	asked  map[uuid.UUID]int
	fail   bool // answer 500
}

func newAssetAPI(t *testing.T) *assetAPI {
	t.Helper()
	a := &assetAPI{assets: map[uuid.UUID]job.VODPlayback{}, asked: map[uuid.UUID]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+workerSecret {
			problem.Error(w, http.StatusUnauthorized, "worker secret missing or wrong")
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/internal/v1/assets/")
		idStr, ok2 := strings.CutSuffix(rest, "/playback")
		id, err := uuid.Parse(idStr)
		if !ok || !ok2 || err != nil || r.Method != http.MethodGet {
			problem.Error(w, http.StatusBadRequest, "not GET /internal/v1/assets/{id}/playback")
			return
		}
		a.mu.Lock()
		a.asked[id]++
		pb, found := a.assets[id]
		fail := a.fail
		a.mu.Unlock()
		switch {
		case fail:
			problem.Error(w, http.StatusInternalServerError, "database down")
		case !found:
			problem.Error(w, http.StatusNotFound, "asset not found")
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(pb)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *assetAPI) set(pb job.VODPlayback) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.assets[pb.AssetID] = pb
}

func (a *assetAPI) count(id uuid.UUID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked[id]
}

// keyLog wraps the real store and records every key the router asks for.
type keyLog struct {
	storage.Store
	mu   sync.Mutex
	keys []string
}

func (k *keyLog) log(key string) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
}

func (k *keyLog) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, storage.Info, error) {
	k.log(key)
	return k.Store.Get(ctx, key, off, n)
}

func (k *keyLog) Stat(ctx context.Context, key string) (storage.Info, error) {
	k.log(key)
	return k.Store.Stat(ctx, key)
}

func (k *keyLog) seen() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.keys...)
}

// clock is a settable clock for the asset cache and token expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type vodBundle struct {
	*testBundle
	api   *assetAPI
	store *keyLog
	clock *clock
	asset uuid.UUID // a ready, public asset with the generated media
}

// setupVOD starts a router with VOD playback over st (a real store), the
// API played by an httptest server, and uploads the generated media (HLS
// at the top, the DASH presentation next to it) as one ready asset.
func setupVOD(t *testing.T, st storage.Store, mutate func(*router.Config)) *vodBundle {
	t.Helper()
	v := &vodBundle{
		testBundle: newBundle(t), api: newAssetAPI(t), store: &keyLog{Store: st},
		clock: &clock{t: time.Now()}, asset: uuid.New(),
	}
	v.startRouter(t, router.ModeProxy, func(c *router.Config) {
		c.Store, c.APIURL, c.WorkerSecret, c.Now = v.store, v.api.srv.URL, workerSecret, v.clock.Now
		if mutate != nil {
			mutate(c)
		}
	})
	v.upload(t, v.asset)
	v.api.set(job.VODPlayback{AssetID: v.asset, StreamID: uuid.MustParse(v.stream), Status: job.AssetReady,
		PlaybackPolicy: playback.PolicyPublic, DurationS: 6})
	return v
}

// upload stores the generated media as asset id's VOD files.
func (v *vodBundle) upload(t *testing.T, id uuid.UUID) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(mediaDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(mediaDir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key := job.AssetPrefix(id) + strings.TrimPrefix(filepath.ToSlash(rel), "dash/")
		return v.store.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), "")
	}))
}

func (v *vodBundle) do(t *testing.T, method, p string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, v.router.URL+p, nil)
	require.NoError(t, err)
	for k, val := range hdr {
		req.Header.Set(k, val)
	}
	res, err := v.client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, body
}

// requireProblem checks a problem+json answer with status whose detail
// contains want.
func requireProblem(t *testing.T, res *http.Response, body []byte, status int, want string) {
	t.Helper()
	require.Equal(t, status, res.StatusCode, "%s", body)
	require.Equal(t, problem.ContentType, res.Header.Get("Content-Type"))
	var p problem.Problem
	require.NoError(t, json.Unmarshal(body, &p), "%s", body)
	require.Equal(t, status, p.Status)
	require.Contains(t, p.Detail, want)
}

func mediaFile(t *testing.T, file string) []byte {
	t.Helper()
	if !strings.Contains(file, "/") && file != "index.m3u8" {
		file = "dash/" + file // uploaded next to the HLS tree
	}
	b, err := os.ReadFile(filepath.Join(mediaDir, filepath.FromSlash(file)))
	require.NoError(t, err, file)
	return b
}

// walkVOD follows the VOD multivariant playlist like a player: every media
// playlist, init and segment, checking each answer's body, type and cache
// headers. It returns the number of files fetched.
func (v *vodBundle) walkVOD(t *testing.T, start string) int {
	t.Helper()
	seen := map[string]bool{}
	var visit func(u *url.URL)
	visit = func(u *url.URL) {
		if seen[u.String()] {
			return
		}
		seen[u.String()] = true
		res, err := v.client.Get(u.String())
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", u, body)
		p, err := playback.ParseVODPath(u.EscapedPath())
		require.NoError(t, err)
		require.Equal(t, wantType(p.File), res.Header.Get("Content-Type"), u.String())
		require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"), u.String())
		require.Equal(t, "bytes", res.Header.Get("Accept-Ranges"))
		require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
		require.NotEmpty(t, res.Header.Get("ETag"))
		require.Equal(t, mediaFile(t, p.File), body, u.String())
		if path.Ext(p.File) != ".m3u8" {
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
	u, err := url.Parse(v.router.URL + start)
	require.NoError(t, err)
	visit(u)
	return len(seen)
}

// vodServes is what every store must give: the files of a ready asset with
// their types and immutable caching, ranges, HEAD and conditional requests.
func vodServes(t *testing.T, v *vodBundle) {
	base := "/vod/" + v.asset.String() + "/"
	n := v.walkVOD(t, base+"index.m3u8")
	require.Greater(t, n, 10, "multivariant, 3 media playlists, inits and segments")

	res, body := v.do(t, http.MethodGet, base+"manifest.mpd", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/dash+xml", res.Header.Get("Content-Type"))
	require.Equal(t, mediaFile(t, "manifest.mpd"), body)
	var m mpd
	require.NoError(t, xml.Unmarshal(body, &m))
	rep := m.Sets[0].Reps[0]
	init := strings.ReplaceAll(rep.Template.Init, "$RepresentationID$", rep.ID)
	res, body = v.do(t, http.MethodGet, base+init, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, init)
	require.Equal(t, "video/mp4", res.Header.Get("Content-Type"))
	require.Equal(t, mediaFile(t, init), body)

	seg := "720p/1.m4s"
	whole := mediaFile(t, seg)
	size := len(whole)
	require.Greater(t, size, 100)
	for _, c := range []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=10-99", 10, 99},
		{"bytes=0-0", 0, 0},
		{fmt.Sprintf("bytes=%d-", size-7), size - 7, size - 1},
		{"bytes=-25", size - 25, size - 1},
		{fmt.Sprintf("bytes=50-%d", size+1000), 50, size - 1},
		{fmt.Sprintf("bytes=-%d", size+5), 0, size - 1},
	} {
		res, body := v.do(t, http.MethodGet, base+seg, map[string]string{"Range": c.rng})
		require.Equal(t, http.StatusPartialContent, res.StatusCode, c.rng)
		require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, size), res.Header.Get("Content-Range"), c.rng)
		require.Equal(t, fmt.Sprint(c.end-c.start+1), res.Header.Get("Content-Length"), c.rng)
		require.Equal(t, whole[c.start:c.end+1], body, c.rng)
		require.Equal(t, "video/iso.segment", res.Header.Get("Content-Type"))
	}
	for _, rng := range []string{fmt.Sprintf("bytes=%d-", size), fmt.Sprintf("bytes=%d-%d", size+10, size+20), "bytes=-0"} {
		res, body := v.do(t, http.MethodGet, base+seg, map[string]string{"Range": rng})
		requireProblem(t, res, body, http.StatusRequestedRangeNotSatisfiable, "outside the file")
		require.Equal(t, fmt.Sprintf("bytes */%d", size), res.Header.Get("Content-Range"), rng)
	}
	for _, rng := range []string{"bytes=0-1,5-9", "items=0-5", "bytes=9-3", "bytes=+1-5", "bytes=a-b"} {
		res, body := v.do(t, http.MethodGet, base+seg, map[string]string{"Range": rng})
		require.Equal(t, http.StatusOK, res.StatusCode, "%s is ignored: the whole file", rng)
		require.Equal(t, whole, body, rng)
	}

	res, body = v.do(t, http.MethodHead, base+seg, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Empty(t, body)
	require.Equal(t, fmt.Sprint(size), res.Header.Get("Content-Length"))
	require.Equal(t, "video/iso.segment", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"))
	etag := res.Header.Get("ETag")
	require.NotEmpty(t, etag)
	res, body = v.do(t, http.MethodHead, base+seg, map[string]string{"Range": "bytes=0-9"})
	require.Equal(t, http.StatusPartialContent, res.StatusCode)
	require.Equal(t, "10", res.Header.Get("Content-Length"))
	require.Empty(t, body)

	res, body = v.do(t, http.MethodGet, base+seg, map[string]string{"If-None-Match": etag})
	require.Equal(t, http.StatusNotModified, res.StatusCode)
	require.Empty(t, body)
	res, body = v.do(t, http.MethodGet, base+seg, map[string]string{"Range": "bytes=0-9", "If-Range": `"other"`})
	require.Equal(t, http.StatusOK, res.StatusCode, "If-Range mismatch: the whole file")
	require.Equal(t, whole, body)
	res, body = v.do(t, http.MethodGet, base+seg, map[string]string{"Range": "bytes=0-9", "If-Range": etag})
	require.Equal(t, http.StatusPartialContent, res.StatusCode)
	require.Equal(t, whole[:10], body)

	res, body = v.do(t, http.MethodGet, base+"720p/999.m4s", nil)
	requireProblem(t, res, body, http.StatusNotFound, "no such file in the asset: 720p/999.m4s")
	require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))

	req, err := http.NewRequest(http.MethodOptions, v.router.URL+base+"index.m3u8", nil)
	require.NoError(t, err)
	pre, err := v.client.Do(req)
	require.NoError(t, err)
	pre.Body.Close()
	require.Equal(t, http.StatusNoContent, pre.StatusCode)
	require.Contains(t, pre.Header.Get("Access-Control-Allow-Headers"), "Range")

	for _, k := range v.store.seen() {
		require.True(t, strings.HasPrefix(k, job.AssetPrefix(v.asset)), "key %q outside the asset", k)
	}
	require.Greater(t, metric(t, v.reg, "dionysia_router_requests_total", router.OutcomeVODServed), float64(n))
	require.Equal(t, 3.0, metric(t, v.reg, "dionysia_router_requests_total", router.OutcomeVODRange))
}

func TestVODPlaybackFileStore(t *testing.T) {
	t.Parallel()
	st, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	vodServes(t, setupVOD(t, st, nil))
}

func TestVODPlaybackS3(t *testing.T) {
	t.Parallel()
	weed := testkit.SeaweedFS(t)
	st, err := storage.Open(t.Context(), weed.PrefixURL("vod-"+uuid.NewString()[:8]),
		storage.Options{AccessKeyID: weed.AccessKey, SecretAccessKey: weed.SecretKey})
	require.NoError(t, err)
	vodServes(t, setupVOD(t, st, nil))
}

func TestVODStatus(t *testing.T) {
	t.Parallel()
	st, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	v := setupVOD(t, st, nil)
	stream := uuid.MustParse(v.stream)
	for _, c := range []struct{ status, want string }{
		{job.AssetRecording, "asset is not ready (status: recording)"},
		{job.AssetProcessing, "asset is not ready (status: processing)"},
		{job.AssetFailed, "its recording failed (status: failed"},
		{job.AssetDeleted, "asset not found (status: deleted)"},
		{"exploded", `asset is not playable (status: "exploded")`},
	} {
		id := uuid.New()
		v.upload(t, id) // files present: the status alone decides
		v.api.set(job.VODPlayback{AssetID: id, StreamID: stream, Status: c.status, PlaybackPolicy: playback.PolicyPublic})
		res, body := v.do(t, http.MethodGet, "/vod/"+id.String()+"/index.m3u8", nil)
		requireProblem(t, res, body, http.StatusNotFound, c.want)
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	}
	res, body := v.do(t, http.MethodGet, "/vod/"+uuid.NewString()+"/index.m3u8", nil)
	requireProblem(t, res, body, http.StatusNotFound, "asset not found")

	res, body = v.do(t, http.MethodPost, "/vod/"+v.asset.String()+"/index.m3u8", nil)
	requireProblem(t, res, body, http.StatusMethodNotAllowed, "only GET, HEAD and OPTIONS")
	require.Equal(t, "GET, HEAD, OPTIONS", res.Header.Get("Allow"))
}

func TestVODSigned(t *testing.T) {
	t.Parallel()
	st, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	v := setupVOD(t, st, nil)
	signed := uuid.New()
	v.upload(t, signed)
	v.api.set(job.VODPlayback{AssetID: signed, StreamID: uuid.MustParse(v.stream), Status: job.AssetReady, PlaybackPolicy: playback.PolicySigned})
	noPolicy := uuid.New()
	v.upload(t, noPolicy)
	v.api.set(job.VODPlayback{AssetID: noPolicy, StreamID: uuid.MustParse(v.stream), Status: job.AssetReady})

	tok, err := v.signer.MintAt(v.stream, v.clock.Now().Add(time.Hour), "")
	require.NoError(t, err)
	other, err := v.signer.MintAt(uuid.NewString(), v.clock.Now().Add(time.Hour), "")
	require.NoError(t, err)
	expired, err := v.signer.MintAt(v.stream, v.clock.Now().Add(-time.Second), "")
	require.NoError(t, err)
	otherIP, err := v.signer.MintAt(v.stream, v.clock.Now().Add(time.Hour), "192.0.2.7")
	require.NoError(t, err)
	mine, err := v.signer.MintAt(v.stream, v.clock.Now().Add(time.Hour), "127.0.0.1")
	require.NoError(t, err)
	foreign, err := playback.ParseKeys("zz:" + keyV1[:len(keyV1)-4] + "AAA=")
	require.NoError(t, err)
	forged, err := foreign.MintAt(v.stream, v.clock.Now().Add(time.Hour), "")
	require.NoError(t, err)

	for _, id := range []uuid.UUID{signed, noPolicy} {
		at := func(token, file string) string { return playback.VODURLPath(id.String(), token, file) }
		res, body := v.do(t, http.MethodGet, at("", "index.m3u8"), nil)
		requireProblem(t, res, body, http.StatusForbidden, "playback token missing")
		for tk, want := range map[string]string{
			other: "another stream", expired: "expired", otherIP: "another address", forged: "",
		} {
			res, body = v.do(t, http.MethodGet, at(tk, "index.m3u8"), nil)
			requireProblem(t, res, body, http.StatusForbidden, want)
		}
		for _, tk := range []string{tok, mine} {
			n := v.walkVOD(t, at(tk, "index.m3u8"))
			require.Greater(t, n, 10, "the token prefix reaches every file")
		}
	}
	// The public asset plays with or without a token.
	res, _ := v.do(t, http.MethodGet, playback.VODURLPath(v.asset.String(), tok, "index.m3u8"), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)

	// A router without signing keys refuses every signed asset (fail closed).
	st2, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	nokeys := setupVOD(t, st2, func(c *router.Config) { c.Signer = nil })
	nokeys.api.set(job.VODPlayback{AssetID: nokeys.asset, StreamID: uuid.MustParse(nokeys.stream), Status: job.AssetReady, PlaybackPolicy: playback.PolicySigned})
	tok2, err := v.signer.Mint(nokeys.stream, time.Hour, "")
	require.NoError(t, err)
	res, body := nokeys.do(t, http.MethodGet, playback.VODURLPath(nokeys.asset.String(), tok2, "index.m3u8"), nil)
	requireProblem(t, res, body, http.StatusForbidden, "signed playback is not configured")
}

func TestVODTraversal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := storage.NewFile(filepath.Join(dir, "store"))
	require.NoError(t, err)
	v := setupVOD(t, st, nil)
	neighbour := uuid.New()
	require.NoError(t, v.store.Put(t.Context(), job.AssetPrefix(neighbour)+"secret.m3u8", strings.NewReader("SECRET"), 6, ""))
	require.NoError(t, v.store.Put(t.Context(), "secret.m3u8", strings.NewReader("SECRET"), 6, ""))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret.m3u8"), []byte("SECRET"), 0o644))
	v.api.set(job.VODPlayback{AssetID: neighbour, StreamID: uuid.New(), Status: job.AssetReady, PlaybackPolicy: playback.PolicySigned})
	before := len(v.store.seen())

	base := "/vod/" + v.asset.String() + "/"
	for _, target := range []string{
		base + "../secret.m3u8", base + "../" + neighbour.String() + "/secret.m3u8",
		base + "%2e%2e/secret.m3u8", base + "%2E%2E%2F" + neighbour.String() + "%2Fsecret.m3u8",
		base + "720p/../../../secret.m3u8", base + "..%5csecret.m3u8", base + "secret.m3u8%00",
		base + ".hidden", base + "%2fetc%2fpasswd", base + "/etc/passwd", base + "//secret.m3u8",
		base + "t/../../secret.m3u8", base + "./index.m3u8", base + "720p//index.m3u8",
		"/vod/%2e%2e/secret.m3u8", "/vod/../secret.m3u8", "/vod/" + v.asset.String() + "%2f..%2fsecret.m3u8",
		"/vod//etc/passwd", "/vod/" + strings.ToUpper(v.asset.String()) + "/index.m3u8",
	} {
		conn, err := net.DialTimeout("tcp", v.router.Listener.Addr().String(), time.Second)
		require.NoError(t, err)
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n", target)
		require.NoError(t, err)
		raw, _ := io.ReadAll(conn)
		conn.Close()
		status := strings.SplitN(string(raw), " ", 3)
		require.GreaterOrEqual(t, len(status), 2, target)
		require.Contains(t, []string{"400", "404"}, status[1], "%s → %s", target, status[1])
		require.Contains(t, string(raw), "application/problem+json", target)
		require.NotContains(t, string(raw), "SECRET", target)
	}
	require.Len(t, v.store.seen(), before, "no refused path reached the store")
	require.Zero(t, v.api.count(neighbour), "nor the API")
}

// jpegOf encodes a w×h JPEG of one colour.
func jpegOf(t *testing.T, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

func TestVODThumbnail(t *testing.T) {
	t.Parallel()
	st, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	v := setupVOD(t, st, nil)
	prefix := job.AssetPrefix(v.asset)
	thumbs := map[float64][]byte{}
	var list []job.VODThumbnail
	for i, off := range []float64{20, 0, 10} { // unsorted: the router sorts
		b := jpegOf(t, 640, 360, color.RGBA{R: uint8(60 * i), G: 100, B: 200, A: 255})
		key := prefix + fmt.Sprintf("thumbs/%d.jpg", 1796000000000+int(off*1000))
		require.NoError(t, v.store.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), "image/jpeg"))
		thumbs[off] = b
		if off == 10 {
			key = strings.TrimPrefix(key, prefix) // a key relative to the asset works too
		}
		list = append(list, job.VODThumbnail{OffsetS: off, Key: key})
	}
	v.api.set(job.VODPlayback{AssetID: v.asset, StreamID: uuid.MustParse(v.stream), Status: job.AssetReady,
		PlaybackPolicy: playback.PolicyPublic, DurationS: 25, Thumbnails: list})
	at := "/vod/" + v.asset.String() + "/thumbnail.jpg"
	for q, off := range map[string]float64{"": 0, "?time=0": 0, "?time=4.9": 0, "?time=5.1": 10, "?time=12": 10, "?time=16": 20, "?time=9999": 20} {
		res, body := v.do(t, http.MethodGet, at+q, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, q)
		require.Equal(t, "image/jpeg", res.Header.Get("Content-Type"))
		require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"))
		require.Equal(t, thumbs[off], body, "%s picks the thumbnail at %v s", q, off)
	}
	res, body := v.do(t, http.MethodGet, at+"?time=11&width=320", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "image/jpeg", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=3600", res.Header.Get("Cache-Control"))
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, [2]int{320, 180}, [2]int{cfg.Width, cfg.Height})
	res2, body2 := v.do(t, http.MethodGet, at+"?time=11&width=320", nil)
	require.Equal(t, body, body2, "the same scaled thumbnail again")
	res2, _ = v.do(t, http.MethodGet, at+"?time=11&width=320", map[string]string{"If-None-Match": res.Header.Get("ETag")})
	require.Equal(t, http.StatusNotModified, res2.StatusCode)
	res, body = v.do(t, http.MethodGet, at+"?width=5000", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, thumbs[0], body, "wider than the original: never scaled up")

	for q, want := range map[string]string{
		"?time=-1": "time must be", "?time=abc": "time must be", "?time=NaN": "time must be", "?time=Inf": "time must be",
		"?width=8": "width must be an integer of at least 16", "?width=abc": "width must be", "?width=-3": "width must be",
	} {
		res, body := v.do(t, http.MethodGet, at+q, nil)
		requireProblem(t, res, body, http.StatusBadRequest, want)
	}

	bare := uuid.New()
	v.api.set(job.VODPlayback{AssetID: bare, StreamID: uuid.MustParse(v.stream), Status: job.AssetReady, PlaybackPolicy: playback.PolicyPublic})
	res, body = v.do(t, http.MethodGet, "/vod/"+bare.String()+"/thumbnail.jpg?time=3", nil)
	requireProblem(t, res, body, http.StatusNotFound, "asset has no thumbnails")
}

func TestVODCache(t *testing.T) {
	t.Parallel()
	st, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	v := setupVOD(t, st, nil)
	// A ready signed asset is cached for 30 s, a public one for 5 s.
	signed := uuid.New()
	v.upload(t, signed)
	v.api.set(job.VODPlayback{AssetID: signed, StreamID: uuid.MustParse(v.stream), Status: job.AssetReady, PlaybackPolicy: playback.PolicySigned})
	tok, err := v.signer.MintAt(v.stream, v.clock.Now().Add(time.Hour), "")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			res, err := v.client.Get(v.router.URL + playback.VODURLPath(signed.String(), tok, "720p/index.m3u8"))
			if err == nil {
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("status %d", res.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, v.api.count(signed), "concurrent requests share one lookup")
	v.clock.Advance(29 * time.Second)
	res, _ := v.do(t, http.MethodGet, playback.VODURLPath(signed.String(), tok, "index.m3u8"), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, v.api.count(signed))
	v.clock.Advance(2 * time.Second)
	res, _ = v.do(t, http.MethodGet, playback.VODURLPath(signed.String(), tok, "index.m3u8"), nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 2, v.api.count(signed), "asked again after 30 s")

	for range 5 {
		res, _ := v.do(t, http.MethodGet, "/vod/"+v.asset.String()+"/index.m3u8", nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	require.Equal(t, 1, v.api.count(v.asset))
	v.clock.Advance(6 * time.Second)
	v.do(t, http.MethodGet, "/vod/"+v.asset.String()+"/index.m3u8", nil)
	require.Equal(t, 2, v.api.count(v.asset), "a public asset is asked again after 5 s")

	// Not ready: a few seconds, then the new status applies.
	pending := uuid.New()
	v.upload(t, pending)
	v.api.set(job.VODPlayback{AssetID: pending, StreamID: uuid.MustParse(v.stream), Status: job.AssetProcessing, PlaybackPolicy: playback.PolicyPublic})
	for range 3 {
		res, body := v.do(t, http.MethodGet, "/vod/"+pending.String()+"/index.m3u8", nil)
		requireProblem(t, res, body, http.StatusNotFound, "not ready")
	}
	require.Equal(t, 1, v.api.count(pending))
	v.api.set(job.VODPlayback{AssetID: pending, StreamID: uuid.MustParse(v.stream), Status: job.AssetReady, PlaybackPolicy: playback.PolicyPublic})
	v.clock.Advance(2*time.Second + time.Millisecond)
	res, _ = v.do(t, http.MethodGet, "/vod/"+pending.String()+"/index.m3u8", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "ready after the pending lifetime")
	require.Equal(t, 2, v.api.count(pending))

	// Unknown: cached briefly too.
	unknown := uuid.New()
	for range 3 {
		res, _ := v.do(t, http.MethodGet, "/vod/"+unknown.String()+"/index.m3u8", nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode)
	}
	require.Equal(t, 1, v.api.count(unknown))
	v.clock.Advance(time.Second + time.Millisecond)
	v.do(t, http.MethodGet, "/vod/"+unknown.String()+"/index.m3u8", nil)
	require.Equal(t, 2, v.api.count(unknown))
	require.GreaterOrEqual(t, metric(t, v.reg, "dionysia_router_vod_cache_total", "hit"), 5.0)
	require.GreaterOrEqual(t, metric(t, v.reg, "dionysia_router_vod_cache_total", "negative"), 2.0)
}

func TestVODAPIUnavailable(t *testing.T) {
	t.Parallel()
	st, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	v := setupVOD(t, st, nil)
	v.api.mu.Lock()
	v.api.fail = true
	v.api.mu.Unlock()
	for range 2 {
		res, body := v.do(t, http.MethodGet, "/vod/"+v.asset.String()+"/index.m3u8", nil)
		requireProblem(t, res, body, http.StatusServiceUnavailable, "asset lookup unavailable")
		require.Equal(t, "1", res.Header.Get("Retry-After"))
	}
	require.Equal(t, 2, v.api.count(v.asset), "errors are not cached")
	require.Equal(t, 2.0, metric(t, v.reg, "dionysia_router_requests_total", router.OutcomeAPIError))

	// A wrong worker secret is an error of this router, not a missing asset.
	st2, err := storage.NewFile(t.TempDir())
	require.NoError(t, err)
	wrong := setupVOD(t, st2, func(c *router.Config) { c.WorkerSecret = "not-the-secret" })
	res, body := wrong.do(t, http.MethodGet, "/vod/"+wrong.asset.String()+"/index.m3u8", nil)
	requireProblem(t, res, body, http.StatusServiceUnavailable, "asset lookup unavailable")

	// A router without a store does not serve VOD at all.
	off := setup(t, router.ModeProxy, nil)
	res, body = off.get(t, "/vod/"+uuid.NewString()+"/index.m3u8")
	requireProblem(t, res, body, http.StatusServiceUnavailable, "VOD playback is not configured")
}
