package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/thumbnail"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of VOD requests, counted by dionysia_router_requests_total next
// to the live ones (bad_path, forbidden, method_not_allowed, preflight and
// client_gone are shared).
const (
	OutcomeVODServed    = "vod_served"    // 200, 206 or 304 from the store
	OutcomeVODNotFound  = "vod_not_found" // unknown, not ready, failed or deleted asset; no such file
	OutcomeVODRange     = "vod_range_not_satisfiable"
	OutcomeVODDisabled  = "vod_disabled" // this router has no store or no worker secret
	OutcomeAPIError     = "api_error"    // the API did not answer about the asset
	OutcomeStoreError   = "store_error"  // the store failed
	OutcomeBadParameter = "bad_parameter"
)

// Cache-Control of VOD files: everything under a ready asset is immutable
// (its manifests are written once, when the asset becomes ready), a scaled
// thumbnail may be kept an hour.
const (
	vodImmutable   = "public, max-age=31536000, immutable"
	vodScaledCache = "public, max-age=3600"
)

// thumbnailFile is the virtual file /vod/{id}/thumbnail.jpg?time=s&width=w.
const thumbnailFile = "thumbnail.jpg"

// Bounds of the scaled thumbnail cache and of concurrent scalings (each
// costs ~50 ms of a core).
const (
	scaledCacheBytes = 16 << 20
	maxScalings      = 2
	maxThumbnailSize = 8 << 20 // a recorded still larger than this is not scaled
)

// vod serves GET|HEAD /vod/{asset_id}[/t/{token}]/{file} from the
// recordings store.
type vod struct {
	store  storage.Store
	assets *assetCache
	scaled *byteLRU
	scale  chan struct{} // semaphore of concurrent scalings

	cacheRes *prometheus.CounterVec
}

func newVOD(cfg Config) *vod {
	client := cfg.APIClient
	if client == nil {
		client = &http.Client{Timeout: apiTimeout}
	}
	v := &vod{
		store:  cfg.Store,
		scaled: newByteLRU(scaledCacheBytes),
		scale:  make(chan struct{}, maxScalings),
		cacheRes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_router_vod_cache_total",
			Help: "Asset lookups of VOD requests by cache result (hit, negative hit, miss).",
		}, []string{"result"}),
	}
	v.assets = newAssetCache(cfg, func(ctx context.Context, id uuid.UUID) (job.VODPlayback, error) {
		return fetchPlayback(ctx, client, cfg.APIURL, cfg.WorkerSecret, id)
	})
	return v
}

func (v *vod) collectors() []prometheus.Collector { return []prometheus.Collector{v.cacheRes} }

func (rt *Router) serveVOD(w http.ResponseWriter, r *http.Request) {
	if !rt.playbackMethod(w, r) {
		return
	}
	if rt.vod == nil {
		rt.problem(w, http.StatusServiceUnavailable, OutcomeVODDisabled,
			"VOD playback is not configured on this router (it needs DIONYSIA_WORKER_SECRET and DIONYSIA_STORAGE_URL)")
		return
	}
	p, err := playback.ParseVODPath(r.URL.EscapedPath())
	if err != nil {
		rt.problem(w, http.StatusBadRequest, OutcomeBadPath, "not a VOD path: /vod/{asset_id}[/t/{token}]/{file}")
		return
	}
	id, err := uuid.Parse(p.AssetID)
	if err != nil { // ParseVODPath checked it already
		rt.problem(w, http.StatusBadRequest, OutcomeBadPath, "asset id is not a UUID")
		return
	}
	a, res, err := rt.vod.assets.get(r.Context(), id)
	rt.vod.cacheRes.WithLabelValues(res).Inc()
	if err != nil {
		if r.Context().Err() != nil {
			rt.requests.WithLabelValues(OutcomeClientGone).Inc()
			return
		}
		rt.log.Warn("looking up asset", "asset_id", id, "err", err)
		w.Header().Set("Retry-After", "1")
		rt.problem(w, http.StatusServiceUnavailable, OutcomeAPIError, "asset lookup unavailable")
		return
	}
	if !a.found {
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, "asset not found")
		return
	}
	pb := a.pb
	if !rt.vodAuthorized(w, r, p, pb) {
		return
	}
	switch pb.Status {
	case job.AssetReady:
	case job.AssetRecording, job.AssetProcessing:
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, "asset is not ready (status: "+pb.Status+")")
		return
	case job.AssetFailed:
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound,
			"asset has no VOD files: its recording failed (status: failed; GET /api/v1/assets/"+id.String()+" says why)")
		return
	case job.AssetDeleted:
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, "asset not found (status: deleted)")
		return
	default:
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, fmt.Sprintf("asset is not playable (status: %q)", pb.Status))
		return
	}
	if p.File == thumbnailFile {
		rt.vodThumbnail(w, r, pb)
		return
	}
	key := job.AssetPrefix(id) + p.File
	if err := storage.CheckKey(key); err != nil {
		rt.problem(w, http.StatusBadRequest, OutcomeBadPath, "not a file of the asset: "+p.File)
		return
	}
	rt.serveObject(w, r, key, contentType(p.File), vodImmutable)
}

// vodAuthorized enforces the playback policy of the asset's stream exactly
// like live playback: public plays, anything else (signed, or a policy this
// router does not know) needs a token minted for the asset's stream, and
// without signing keys it is refused.
func (rt *Router) vodAuthorized(w http.ResponseWriter, r *http.Request, p playback.VODPath, pb job.VODPlayback) bool {
	if pb.PlaybackPolicy == playback.PolicyPublic {
		return true
	}
	if rt.cfg.Signer == nil {
		rt.problem(w, http.StatusForbidden, OutcomeForbidden, "signed playback is not configured on this router")
		return false
	}
	if err := rt.cfg.Signer.Verify(p.Token, pb.StreamID.String(), rt.clientIP(r), rt.cfg.Now()); err != nil {
		rt.problem(w, http.StatusForbidden, OutcomeForbidden, err.Error())
		return false
	}
	return true
}

// contentType is the Content-Type of an asset's file by its extension, as
// the worker's origin sends them for live playback.
func contentType(file string) string {
	audio := false
	for seg := range strings.SplitSeq(file, "/") {
		if strings.HasPrefix(strings.ToLower(seg), "audio") {
			audio = true
		}
	}
	switch strings.ToLower(path.Ext(file)) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl"
	case ".mpd":
		return "application/dash+xml"
	case ".m4s":
		if audio {
			return "audio/mp4"
		}
		return "video/iso.segment"
	case ".mp4":
		if audio {
			return "audio/mp4"
		}
		return "video/mp4"
	case ".m4a":
		return "audio/mp4"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".vtt":
		return "text/vtt; charset=utf-8"
	}
	return "application/octet-stream"
}

// serveObject answers GET or HEAD for one stored object: a single byte
// range (206, or 416 when unsatisfiable), conditional requests (ETag,
// Last-Modified: 304), and the body streamed from the store.
func (rt *Router) serveObject(w http.ResponseWriter, r *http.Request, key, ctype, cacheControl string) {
	ctx := r.Context()
	rangeHdr := r.Header.Get("Range")
	needStat := r.Method == http.MethodHead || rangeHdr != "" ||
		r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != ""
	var (
		body io.ReadCloser
		info storage.Info
		err  error
	)
	if needStat {
		info, err = rt.vod.store.Stat(ctx, key)
	} else {
		body, info, err = rt.vod.store.Get(ctx, key, 0, 0)
	}
	if err != nil {
		rt.storeFailed(w, r, key, err)
		return
	}
	if body != nil {
		defer body.Close()
	}
	etag := entityTag(info)
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheControl)
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", etag)
	if !info.ModTime.IsZero() {
		h.Set("Last-Modified", info.ModTime.UTC().Format(http.TimeFormat))
	}
	if notModified(r, etag, info.ModTime) {
		rt.requests.WithLabelValues(OutcomeVODServed).Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	size := info.Size
	start, length, status := int64(0), size, http.StatusOK
	if rangeHdr != "" && ifRangeMatches(r.Header.Get("If-Range"), etag, info.ModTime) {
		s, l, ok, satisfiable := parseRange(rangeHdr, size)
		if ok && !satisfiable {
			h.Del("ETag")
			h.Del("Last-Modified")
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			rt.problem(w, http.StatusRequestedRangeNotSatisfiable, OutcomeVODRange,
				fmt.Sprintf("range %q is outside the file, which has %d bytes", rangeHdr, size))
			return
		}
		if ok {
			start, length, status = s, l, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, s+l-1, size))
		}
	}
	if r.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
		rt.requests.WithLabelValues(OutcomeVODServed).Inc()
		w.WriteHeader(status)
		return
	}
	if body == nil {
		if length == 0 {
			body = io.NopCloser(strings.NewReader(""))
		} else if body, _, err = rt.vod.store.Get(ctx, key, start, length); err != nil {
			rt.storeFailed(w, r, key, err)
			return
		}
		defer body.Close()
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	rt.requests.WithLabelValues(OutcomeVODServed).Inc()
	w.WriteHeader(status)
	buf := rt.bufs.Get().(*[]byte)
	defer rt.bufs.Put(buf)
	if _, err := io.CopyBuffer(w, io.LimitReader(body, length), *buf); err != nil && ctx.Err() == nil {
		rt.log.Debug("copying a VOD file", "key", key, "err", err)
	}
}

// storeFailed answers a store error: 404 for a missing object, 503 else.
func (rt *Router) storeFailed(w http.ResponseWriter, r *http.Request, key string, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		file := key
		if _, rest, ok := strings.Cut(strings.TrimPrefix(key, "assets/"), "/"); ok {
			file = rest // the path inside the asset
		}
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, "no such file in the asset: "+file)
	case errors.Is(err, storage.ErrBadKey):
		rt.problem(w, http.StatusBadRequest, OutcomeBadPath, "not a file of the asset")
	case r.Context().Err() != nil:
		rt.requests.WithLabelValues(OutcomeClientGone).Inc()
	default:
		rt.log.Warn("reading from the recordings store", "key", key, "store", rt.vod.store.String(), "err", err)
		w.Header().Set("Retry-After", "1")
		rt.problem(w, http.StatusServiceUnavailable, OutcomeStoreError, "recordings store unavailable")
	}
}

// entityTag is the object's ETag as the store gives it, else one made of
// its size and modification time (objects are written once).
func entityTag(info storage.Info) string {
	if t := strings.Trim(info.ETag, `"`); t != "" && !strings.ContainsAny(t, "\" \t\r\n") {
		return `"` + t + `"`
	}
	return fmt.Sprintf(`"%x-%x"`, info.Size, info.ModTime.UnixNano())
}

// notModified evaluates If-None-Match (weak comparison) or, without it,
// If-Modified-Since (RFC 9110 §13.2.2).
func notModified(r *http.Request, etag string, mod time.Time) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for t := range strings.SplitSeq(inm, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && !mod.IsZero() {
		if t, err := http.ParseTime(ims); err == nil {
			return !mod.Truncate(time.Second).After(t)
		}
	}
	return false
}

// ifRangeMatches evaluates If-Range: empty or a matching strong ETag or
// exact date means the Range applies; anything else means the whole file.
func ifRangeMatches(ifRange, etag string, mod time.Time) bool {
	if ifRange == "" {
		return true
	}
	if strings.HasPrefix(ifRange, `"`) || strings.HasPrefix(ifRange, "W/") {
		return ifRange == etag
	}
	t, err := http.ParseTime(ifRange)
	return err == nil && !mod.IsZero() && mod.Truncate(time.Second).Equal(t)
}

// parseRange parses a Range header of one byte range against a file of
// size bytes: "bytes=a-b", "bytes=a-" or "bytes=-n". ok is false for what
// the server ignores (another unit, several ranges, bad syntax: the whole
// file is sent, RFC 9110 §14.2); satisfiable is false for a well-formed
// range that does not overlap the file (416).
func parseRange(h string, size int64) (start, length int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if first == "" { // suffix: the last n bytes
		n, good := digits(last)
		if !good {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		n = min(n, size)
		return size - n, n, true, true
	}
	a, good := digits(first)
	if !good {
		return 0, 0, false, false
	}
	end := size - 1
	if last != "" {
		b, good := digits(last)
		if !good || b < a {
			return 0, 0, false, false
		}
		end = min(b, size-1)
	}
	if a >= size {
		return 0, 0, true, false
	}
	return a, end - a + 1, true, true
}

// digits parses a non-empty run of ASCII digits (no sign, no space).
func digits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// vodThumbnail serves /vod/{id}/thumbnail.jpg?time=s[&width=w]: the
// recorded thumbnail nearest to s seconds into the asset (default 0: the
// first), as stored, or scaled to width.
func (rt *Router) vodThumbnail(w http.ResponseWriter, r *http.Request, pb job.VODPlayback) {
	q := r.URL.Query()
	at := 0.0
	if s := q.Get("time"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			rt.problem(w, http.StatusBadRequest, OutcomeBadParameter,
				fmt.Sprintf("time must be a number of seconds from the asset's start, at least 0, got %q", s))
			return
		}
		at = f
	}
	width, err := thumbnail.ParseWidth(q.Get("width"))
	if err != nil {
		rt.problem(w, http.StatusBadRequest, OutcomeBadParameter,
			fmt.Sprintf("width must be an integer of at least %d (at most %d is served), got %q", thumbnail.MinWidth, thumbnail.MaxWidth, q.Get("width")))
		return
	}
	th, ok := nearestThumbnail(pb.Thumbnails, at)
	if !ok {
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, "asset has no thumbnails")
		return
	}
	prefix := job.AssetPrefix(pb.AssetID)
	key := th.Key
	if !strings.HasPrefix(key, prefix) {
		key = prefix + key // a key relative to the asset
	}
	if err := storage.CheckKey(key); err != nil {
		rt.log.Warn("the API listed a thumbnail key outside its asset", "asset_id", pb.AssetID, "key", th.Key)
		rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, "asset has no usable thumbnail")
		return
	}
	if width == 0 {
		rt.serveObject(w, r, key, "image/jpeg", vodImmutable)
		return
	}
	img, err := rt.scaledThumbnail(r.Context(), key, width)
	if err != nil {
		if errors.Is(err, thumbnail.ErrNotJPEG) {
			rt.log.Warn("a recorded thumbnail is not a JPEG", "key", key, "err", err)
			rt.problem(w, http.StatusNotFound, OutcomeVODNotFound, "asset has no usable thumbnail")
			return
		}
		rt.storeFailed(w, r, key, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", vodScaledCache)
	h.Set("Content-Length", strconv.Itoa(len(img.data)))
	h.Set("ETag", img.etag)
	if notModified(r, img.etag, time.Time{}) {
		rt.requests.WithLabelValues(OutcomeVODServed).Inc()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	rt.requests.WithLabelValues(OutcomeVODServed).Inc()
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(img.data)
	}
}

// nearestThumbnail picks the thumbnail whose offset is nearest to at
// (thumbs sorted by offset; the earlier one on a tie).
func nearestThumbnail(thumbs []job.VODThumbnail, at float64) (job.VODThumbnail, bool) {
	if len(thumbs) == 0 {
		return job.VODThumbnail{}, false
	}
	best := thumbs[0]
	for _, t := range thumbs[1:] {
		if math.Abs(t.OffsetS-at) < math.Abs(best.OffsetS-at) {
			best = t
		}
	}
	return best, true
}

type scaledImage struct {
	data []byte
	etag string
}

// scaledThumbnail returns the thumbnail at key scaled to width, from the
// scaled cache or read and scaled now (at most maxScalings at once).
func (rt *Router) scaledThumbnail(ctx context.Context, key string, width int) (scaledImage, error) {
	ck := key + "?width=" + strconv.Itoa(width)
	if b, ok := rt.vod.scaled.get(ck); ok {
		return b, nil
	}
	select {
	case rt.vod.scale <- struct{}{}:
		defer func() { <-rt.vod.scale }()
	case <-ctx.Done():
		return scaledImage{}, ctx.Err()
	}
	if b, ok := rt.vod.scaled.get(ck); ok { // scaled while we waited
		return b, nil
	}
	body, info, err := rt.vod.store.Get(ctx, key, 0, 0)
	if err != nil {
		return scaledImage{}, err
	}
	defer body.Close()
	if info.Size > maxThumbnailSize {
		return scaledImage{}, fmt.Errorf("%w: %d bytes is too large for a thumbnail", thumbnail.ErrNotJPEG, info.Size)
	}
	src, err := io.ReadAll(io.LimitReader(body, maxThumbnailSize+1))
	if err != nil {
		return scaledImage{}, fmt.Errorf("reading %s: %w", key, err)
	}
	out, err := thumbnail.Scale(src, width)
	if err != nil {
		return scaledImage{}, err
	}
	img := scaledImage{data: out, etag: fmt.Sprintf(`"%s-w%d"`, strings.Trim(entityTag(info), `"`), width)}
	rt.vod.scaled.put(ck, img)
	return img, nil
}

// byteLRU is a small LRU of scaled images bounded by their total size.
type byteLRU struct {
	max int

	mu    sync.Mutex
	used  int
	order []string // least recently used first; short (a few hundred entries)
	items map[string]scaledImage
}

func newByteLRU(maxBytes int) *byteLRU {
	return &byteLRU{max: maxBytes, items: map[string]scaledImage{}}
}

func (c *byteLRU) get(k string) (scaledImage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.items[k]
	if ok {
		c.touchLocked(k)
	}
	return v, ok
}

func (c *byteLRU) put(k string, v scaledImage) {
	if len(v.data) > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.items[k]; ok {
		c.used -= len(old.data)
		c.touchLocked(k)
	} else {
		c.order = append(c.order, k)
	}
	c.items[k] = v
	c.used += len(v.data)
	for c.used > c.max && len(c.order) > 0 {
		oldest := c.order[0]
		c.order = c.order[1:]
		c.used -= len(c.items[oldest].data)
		delete(c.items, oldest)
	}
}

func (c *byteLRU) touchLocked(k string) {
	for i, o := range c.order {
		if o == k {
			c.order = append(append(c.order[:i:i], c.order[i+1:]...), k)
			return
		}
	}
}
