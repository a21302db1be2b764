package router

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/prometheus/client_golang/prometheus"
)

// The shield: a bounded in-memory cache of the origin's objects in proxy
// mode (docs/routing.md#origin-shield, ADR 0016).

// Defaults of the shield.
const (
	DefaultShieldSize  = 256 << 20
	DefaultPlaylistTTL = 500 * time.Millisecond
)

// Shield results counted by dionysia_router_shield_requests_total.
const (
	ShieldHit       = "hit"       // served from a stored object
	ShieldMiss      = "miss"      // fetched the object from the origin
	ShieldCoalesced = "coalesced" // waited for another request's fetch
	ShieldPass      = "pass"      // (besides miss or coalesced) nothing storable came back: proxied as before
)

// CacheHeader says how the shield answered (hit, miss, coalesced).
const CacheHeader = "X-Dionysia-Cache"

// shieldFetchTimeout bounds one upstream fetch, which runs detached from
// the requests waiting for it.
const shieldFetchTimeout = 10 * time.Second

// entryOverhead is what an object costs beyond its body (key, headers,
// list element), counted against the byte bound.
const entryOverhead = 512

// errNotStorable: the origin answered, but with nothing the shield keeps
// or hands to the waiters (a stream it does not hold); the request is
// proxied the ordinary way, which retries elsewhere.
var errNotStorable = errors.New("origin answer not storable")

// objectKey names an object by stream, owner (worker, session, fencing
// token and acquisition time of its lease: the token alone restarts if
// Redis loses its data, ADR 0007) and path: objects of an earlier owner are
// never found under a later owner's key, even for the same file name.
type objectKey struct {
	stream   string
	worker   string
	session  string
	token    int64
	acquired int64 // unix ns
	file     string
	query    string // a playlist's LL-HLS parameters (llQuery), normalized
}

func keyOf(p playback.Path, o *ownership.Owner, query string) objectKey {
	return objectKey{stream: p.StreamID, worker: o.WorkerID, session: o.SessionID, token: o.Token,
		acquired: o.AcquiredAt.UnixNano(), file: p.File, query: query}
}

// llQuery is the normalized LL-HLS part of a playlist request's query
// (_HLS_msn, _HLS_part, _HLS_skip), "" for anything else: a blocking
// playlist reload is its own object, and every viewer waiting for the same
// part shares one upstream request (the origin holds it until the part is
// published).
func llQuery(q url.Values, k kind) string {
	if k != kindPlaylist {
		return ""
	}
	var v url.Values
	for _, name := range []string{"_HLS_msn", "_HLS_part", "_HLS_skip"} {
		if q.Has(name) {
			if v == nil {
				v = url.Values{}
			}
			v.Set(name, q.Get(name))
		}
	}
	return v.Encode()
}

// mayBlock reports whether the origin may hold the request: a blocking
// playlist reload, or an LL-HLS part ("{number}.{part}.m4s") still being
// made.
func mayBlock(file, query string) bool {
	if query != "" {
		return true
	}
	base := path.Base(file)
	return strings.HasSuffix(base, ".m4s") && strings.Count(base, ".") == 2
}

// object is one origin answer: stored when status is 200 and the headers
// allow it, otherwise only handed to the requests that waited for it.
type object struct {
	key          objectKey
	status       int
	body         []byte
	contentType  string
	cacheControl string
	etag         string
	lastModified time.Time
	stored       time.Time
	// header is set on every answer, whole on the whole-object one;
	// formatted once, shared, never modified.
	header, whole http.Header
	expires       time.Time // zero: immutable
	storable      bool
	elem          *list.Element
}

func (o *object) size() int64 { return int64(len(o.body)) + entryOverhead }

type shieldFlight struct {
	done chan struct{}
	obj  *object
	err  error
}

// shield is the object cache: LRU by bytes, fetches of one object
// coalesced, every object of a stream dropped when its ownership changes.
type shield struct {
	max         int64
	maxObject   int64
	playlistTTL time.Duration
	now         func() time.Time

	mu       sync.Mutex
	gen      uint64
	bytes    int64
	lru      *list.List // front: most recently used
	objects  map[objectKey]*object
	byStream map[string]map[objectKey]struct{}
	flights  map[objectKey]*shieldFlight

	results   *prometheus.CounterVec
	hits      prometheus.Counter
	evictions prometheus.Counter
	hitBytes  prometheus.Counter
	stored    prometheus.GaugeFunc
	count     prometheus.GaugeFunc
}

func newShield(maxBytes int64, playlistTTL time.Duration) *shield {
	s := &shield{
		max: maxBytes, maxObject: max(maxBytes/4, 1), playlistTTL: playlistTTL, now: time.Now,
		lru: list.New(), objects: map[objectKey]*object{}, byStream: map[string]map[objectKey]struct{}{},
		flights: map[objectKey]*shieldFlight{},
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_router_shield_requests_total",
			Help: "Playback requests the origin shield answered, by result (hit, miss, coalesced, pass).",
		}, []string{"result"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dionysia_router_shield_evictions_total",
			Help: "Objects the origin shield dropped to stay within its byte bound.",
		}),
		hitBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dionysia_router_shield_hit_bytes_total",
			Help: "Body bytes of the objects served from the origin shield (whole objects, before ranges).",
		}),
	}
	s.hits = s.results.WithLabelValues(ShieldHit)
	s.stored = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dionysia_router_shield_bytes",
		Help: "Bytes the origin shield holds (bodies plus a fixed overhead per object).",
	}, func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(s.bytes) })
	s.count = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dionysia_router_shield_objects",
		Help: "Objects the origin shield holds.",
	}, func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(len(s.objects)) })
	return s
}

func (s *shield) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.results, s.evictions, s.hitBytes, s.stored, s.count}
}

// kind tells what the shield does with a file: segments and init files are
// immutable, playlists are kept briefly, anything else is passed through,
// such as the live thumbnail (thumbnail.jpg: replaced every few seconds,
// scaled per ?width=, which the shield's keys do not hold).
type kind int

const (
	kindNone kind = iota
	kindImmutable
	kindPlaylist
)

func kindOf(file string) kind {
	switch strings.ToLower(path.Ext(file)) {
	case ".m4s", ".mp4", ".m4a", ".cmfv", ".cmfa", ".ts", ".aac":
		return kindImmutable
	case ".m3u8", ".mpd":
		return kindPlaylist
	}
	return kindNone
}

// get returns the object for key: stored, or fetched once for every
// concurrent caller. Each caller waits only as long as its own ctx; the
// fetch itself is detached and bounded by shieldFetchTimeout.
func (s *shield) get(ctx context.Context, key objectKey, fetch func(context.Context) (*object, error)) (*object, string, error) {
	s.mu.Lock()
	if o, ok := s.objects[key]; ok {
		if o.expires.IsZero() || s.now().Before(o.expires) {
			s.lru.MoveToFront(o.elem)
			s.mu.Unlock()
			s.hits.Inc()
			return o, ShieldHit, nil
		}
		s.removeLocked(o)
	}
	res := ShieldCoalesced
	f, ok := s.flights[key]
	if !ok {
		res = ShieldMiss
		f = &shieldFlight{done: make(chan struct{})}
		s.flights[key] = f
		gen := s.gen
		go s.run(context.WithoutCancel(ctx), key, gen, f, fetch)
	}
	s.mu.Unlock()
	s.results.WithLabelValues(res).Inc()
	select {
	case <-f.done:
		return f.obj, res, f.err
	case <-ctx.Done():
		return nil, res, ctx.Err()
	}
}

// run performs one fetch and stores its result unless the stream's
// ownership changed meanwhile (gen moved) or the answer is not storable.
func (s *shield) run(ctx context.Context, key objectKey, gen uint64, f *shieldFlight, fetch func(context.Context) (*object, error)) {
	ctx, cancel := context.WithTimeout(ctx, shieldFetchTimeout)
	obj, err := fetch(ctx)
	cancel()
	s.mu.Lock()
	delete(s.flights, key)
	if err == nil && obj.storable && s.gen == gen && obj.size() <= s.max {
		obj.key = key
		if old, ok := s.objects[key]; ok {
			s.removeLocked(old)
		}
		s.insertLocked(obj)
	}
	s.mu.Unlock()
	f.obj, f.err = obj, err
	close(f.done)
}

func (s *shield) insertLocked(o *object) {
	for s.bytes+o.size() > s.max {
		last := s.lru.Back()
		if last == nil {
			break
		}
		s.removeLocked(last.Value.(*object))
		s.evictions.Inc()
	}
	o.elem = s.lru.PushFront(o)
	s.objects[o.key] = o
	keys := s.byStream[o.key.stream]
	if keys == nil {
		keys = map[objectKey]struct{}{}
		s.byStream[o.key.stream] = keys
	}
	keys[o.key] = struct{}{}
	s.bytes += o.size()
}

func (s *shield) removeLocked(o *object) {
	s.lru.Remove(o.elem)
	delete(s.objects, o.key)
	if keys := s.byStream[o.key.stream]; keys != nil {
		delete(keys, o.key)
		if len(keys) == 0 {
			delete(s.byStream, o.key.stream)
		}
	}
	s.bytes -= o.size()
}

// invalidate drops every object of a stream (its ownership or policy
// changed) and keeps fetches in flight from storing theirs.
func (s *shield) invalidate(stream string) {
	s.mu.Lock()
	s.gen++
	for k := range s.byStream[stream] {
		s.removeLocked(s.objects[k])
	}
	s.mu.Unlock()
}

// reset drops everything (ownership events may have been missed).
func (s *shield) reset() {
	s.mu.Lock()
	s.gen++
	s.lru.Init()
	clear(s.objects)
	clear(s.byStream)
	s.bytes = 0
	s.mu.Unlock()
}

// shielded answers a GET or HEAD of a segment, init file or playlist from
// the shield. It returns false when the request must be proxied the
// ordinary way (the file type is not shielded, the origin does not hold
// the stream or could not be reached); nothing has been written then.
// The playback policy has been enforced before (authorized): the shield
// is never asked for a request the policy refuses.
func (rt *Router) shielded(w http.ResponseWriter, r *http.Request, p playback.Path, owner *ownership.Owner) bool {
	k := kindOf(p.File)
	if k == kindNone {
		return false
	}
	query := llQuery(r.URL.Query(), k)
	key := keyOf(p, owner, query)
	obj, res, err := rt.shield.get(r.Context(), key, func(ctx context.Context) (*object, error) {
		return rt.fetchObject(ctx, p, owner, k, query)
	})
	if err != nil {
		if r.Context().Err() != nil {
			rt.requests.WithLabelValues(OutcomeClientGone).Inc()
			return true
		}
		rt.shield.results.WithLabelValues(ShieldPass).Inc()
		if !errors.Is(err, errNotStorable) {
			rt.log.Debug("origin shield fetch failed, proxying", "stream_id", p.StreamID, "file", p.File, "err", err)
		}
		return false
	}
	hd := w.Header()
	rt.proxied.Inc()
	if obj.status != http.StatusOK {
		// A definitive answer (a missing file, a refusal): every waiter
		// gets it, nothing is stored.
		hd.Set(WorkerHeader, owner.WorkerID)
		hd.Set(CacheHeader, res)
		if obj.contentType != "" {
			hd.Set("Content-Type", obj.contentType)
		}
		if obj.cacheControl != "" {
			hd.Set("Cache-Control", obj.cacheControl)
		}
		hd.Set("Content-Length", strconv.Itoa(len(obj.body)))
		w.WriteHeader(obj.status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(obj.body)
		}
		return true
	}
	// The header values are formatted once per object and shared (never
	// modified: net/http and ServeContent replace values, they do not
	// write into them).
	for k, v := range obj.header {
		hd[k] = v
	}
	hd[CacheHeader] = cacheValues[res]
	if age := int64(max(rt.shield.now().Sub(obj.stored), 0) / time.Second); age == 0 {
		hd["Age"] = ageZero
	} else {
		hd["Age"] = []string{strconv.FormatInt(age, 10)}
	}
	if res == ShieldHit {
		rt.shield.hitBytes.Add(float64(len(obj.body)))
	}
	if !conditional(r) {
		// The common case, without ServeContent's parsing and formatting.
		for k, v := range obj.whole {
			hd[k] = v
		}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(obj.body)
		}
		return true
	}
	// ServeContent answers If-None-Match/If-Modified-Since (304), Range
	// and If-Range (206, 416) from the stored bytes.
	http.ServeContent(w, r, "", obj.lastModified, bytes.NewReader(obj.body))
	return true
}

var (
	ageZero     = []string{"0"}
	cacheValues = map[string][]string{
		ShieldHit: {ShieldHit}, ShieldMiss: {ShieldMiss}, ShieldCoalesced: {ShieldCoalesced},
	}
)

// conditional reports whether r needs more than the whole object: a range
// or a precondition.
func conditional(r *http.Request) bool {
	for _, k := range []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		if _, ok := r.Header[k]; ok {
			return true
		}
	}
	return false
}

// fetchObject GETs the whole file from the owner's origin (with the
// request's token: the origin checks the policy too) and reads it into an
// object.
func (rt *Router) fetchObject(ctx context.Context, p playback.Path, owner *ownership.Owner, k kind, query string) (*object, error) {
	target := strings.TrimSuffix(owner.OriginURL, "/") + playback.URLPath(p.StreamID, p.Token, p.File)
	if query != "" {
		target += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("building origin request: %w", err)
	}
	req.Header.Set("User-Agent", "dionysia-router")
	start := time.Now()
	transport := rt.transport
	if mayBlock(p.File, query) {
		transport = rt.blocking
	}
	res, err := transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("requesting %s: %w", target, err)
	}
	defer res.Body.Close()
	rt.upstream.Observe(time.Since(start).Seconds())
	if res.StatusCode == http.StatusNotFound && res.Header.Get(originStatusHeader) == notHeld {
		return nil, errNotStorable
	}
	if res.Header.Get(originStreamingHeader) != "" {
		// Still being made: every waiter is proxied, streaming.
		return nil, errNotStorable
	}
	heldTooLong := query != "" && res.StatusCode == http.StatusServiceUnavailable // the part did not come: tell every waiter
	if res.StatusCode != http.StatusOK && (res.StatusCode < 400 || res.StatusCode >= 500) && !heldTooLong {
		// 5xx and anything unexpected: proxied the ordinary way, never stored.
		return nil, fmt.Errorf("origin answered %s: %w", res.Status, errNotStorable)
	}
	limit := rt.shield.maxObject
	if res.ContentLength > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte object bound: %w", p.File, res.ContentLength, limit, errNotStorable)
	}
	var body []byte
	if res.ContentLength >= 0 {
		body = make([]byte, res.ContentLength)
		if _, err := io.ReadFull(res.Body, body); err != nil {
			return nil, fmt.Errorf("reading %s: %w", target, err)
		}
	} else {
		if body, err = io.ReadAll(io.LimitReader(res.Body, limit+1)); err != nil {
			return nil, fmt.Errorf("reading %s: %w", target, err)
		}
		if int64(len(body)) > limit {
			return nil, fmt.Errorf("%s is over the %d-byte object bound: %w", p.File, limit, errNotStorable)
		}
	}
	now := rt.shield.now()
	obj := &object{
		key:    keyOf(p, owner, query),
		status: res.StatusCode, body: body, stored: now,
		contentType: res.Header.Get("Content-Type"), cacheControl: res.Header.Get("Cache-Control"),
	}
	if res.StatusCode != http.StatusOK {
		return obj, nil
	}
	obj.etag = res.Header.Get("ETag")
	if obj.etag == "" {
		h := fnv.New64a()
		_, _ = h.Write(body)
		obj.etag = fmt.Sprintf(`"%x-%x"`, len(body), h.Sum64())
	}
	obj.header = http.Header{WorkerHeader: {owner.WorkerID}, "Etag": {obj.etag}}
	if obj.contentType != "" {
		obj.header["Content-Type"] = []string{obj.contentType}
	}
	if obj.cacheControl != "" {
		obj.header["Cache-Control"] = []string{obj.cacheControl}
	}
	obj.whole = http.Header{"Content-Length": {strconv.Itoa(len(body))}, "Accept-Ranges": {"bytes"}}
	if lm, err := http.ParseTime(res.Header.Get("Last-Modified")); err == nil {
		obj.lastModified = lm
		obj.whole["Last-Modified"] = []string{lm.UTC().Format(http.TimeFormat)}
	}
	cc := parseCacheControl(obj.cacheControl)
	switch {
	case cc.noStore:
	case k == kindImmutable && cc.immutable:
		obj.storable = true
	case k == kindPlaylist && cc.maxAge > 0:
		obj.storable = true
		obj.expires = now.Add(min(rt.shield.playlistTTL, cc.maxAge))
	}
	return obj, nil
}

type cacheControl struct {
	noStore   bool // no-store, no-cache or private
	immutable bool
	maxAge    time.Duration
}

func parseCacheControl(v string) cacheControl {
	var cc cacheControl
	for _, d := range strings.Split(v, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache", "private":
			cc.noStore = true
		case "immutable":
			cc.immutable = true
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n > 0 {
				cc.maxAge = time.Duration(n) * time.Second
			}
		}
	}
	return cc
}
