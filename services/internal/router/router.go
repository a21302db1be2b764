// Package router implements `dionysia router`: a stateless HTTP front for
// live playback that sends each request to the worker currently owning the
// stream.
//
// GET|HEAD /live/{stream_id}[/t/{token}]/{file} looks the stream up in the
// ownership registry (package ownership; cached in process for CacheTTL and
// invalidated by the published ownership changes), checks the playback token
// when the stream's policy is signed, and then either reverse-proxies to the
// owner's origin (default; pooled keep-alive connections, bodies streamed) or
// answers 302 to it. A stream nobody wants is 404; a stream whose session
// wants a worker but has no live owner (the failover window) is 503 with
// Retry-After; an unreachable origin triggers one fresh lookup and then a
// quick 502, never a hang.
//
// GET|HEAD /vod/{asset_id}[/t/{token}]/{file} serves a recorded asset
// straight from the recordings store (vod.go): the asset's facts (stream,
// status, policy, thumbnails) come from the API and are cached (vodcache.go),
// signed assets need a token for their stream, and only ready assets are
// served, immutable, with byte ranges.
package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/dionysia/dionysia/pkg/cors"
	"github.com/dionysia/dionysia/pkg/problem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// Modes.
const (
	ModeProxy    = "proxy"
	ModeRedirect = "redirect"
)

// Defaults of Config.
const (
	DefaultCacheTTL       = time.Second
	DefaultNegativeTTL    = 500 * time.Millisecond
	DefaultDialTimeout    = time.Second
	DefaultHeaderTimeout  = 3 * time.Second
	DefaultMaxIdlePerHost = 256
)

// Outcomes counted by dionysia_router_requests_total.
const (
	OutcomeProxied       = "proxied"
	OutcomeRedirected    = "redirected"
	OutcomeNotLive       = "not_live"
	OutcomeFailover      = "failover"
	OutcomeForbidden     = "forbidden"
	OutcomeBadPath       = "bad_path"
	OutcomeUpstreamError = "upstream_error"
	OutcomeRegistryError = "registry_error"
	OutcomeMethod        = "method_not_allowed"
	OutcomePreflight     = "preflight"
	OutcomeClientGone    = "client_gone"
)

// Headers shared with the worker's origin.
const (
	// WorkerHeader names the worker that served (or was redirected to).
	WorkerHeader = playback.WorkerHeader
	// originStatusHeader/notHeld mark an origin's 404 for a stream it does
	// not hold (see the worker's origin package).
	originStatusHeader = "X-Dionysia-Origin-Status"
	notHeld            = "not-held"
	// originStreamingHeader marks an origin answer streamed while its file
	// is being made (a low-latency segment): passed through as it comes,
	// never stored.
	originStreamingHeader = "X-Dionysia-Streaming"
)

// Config configures a Router. The zero value of each field means its default.
type Config struct {
	Redis       redis.UniversalClient // required
	Prefix      string                // ownership key prefix, default ownership.DefaultPrefix
	Mode        string                // ModeProxy (default) or ModeRedirect
	CacheTTL    time.Duration         // how long an owner is cached, default 1 s
	NegativeTTL time.Duration         // how long "no owner" is cached, default 0.5 s
	// Signer verifies playback tokens of signed streams. Without it, signed
	// streams are refused (403).
	Signer *playback.Signer
	// TrustForwardedFor takes the viewer address from the first
	// X-Forwarded-For entry (only behind a trusted load balancer).
	TrustForwardedFor bool
	DialTimeout       time.Duration // upstream connect timeout, default 1 s
	HeaderTimeout     time.Duration // upstream response header timeout, default 3 s
	MaxIdlePerHost    int           // idle keep-alive connections per origin, default 256
	Logger            *slog.Logger
	// Registry receives the metrics and backs /metrics; default a new one.
	Registry *prometheus.Registry
	// Now is the clock for token expiry; default time.Now.
	Now func() time.Time
	// Pages are extra handlers mounted by path prefix next to /live/, such
	// as the preview page at /play/.
	Pages map[string]http.Handler
	// ShieldSize bounds the origin shield (proxy mode only) in bytes; 0
	// disables it (the zero value: tests and embedders opt in).
	ShieldSize int64
	// PlaylistTTL is the longest a playlist is kept by the shield (never
	// longer than the origin's max-age); default DefaultPlaylistTTL.
	PlaylistTTL time.Duration

	// VOD playback (vod.go). Store is the recordings store /vod/ reads
	// from; nil disables VOD playback (/vod/ answers 503). With a Store,
	// APIURL and WorkerSecret are required: the asset facts come from
	// GET {APIURL}/internal/v1/assets/{id}/playback.
	Store        storage.Store
	APIURL       string
	WorkerSecret string
	// APIClient sends those requests; default a client with a 5 s timeout.
	APIClient *http.Client
	// How long an asset's facts are cached: ready (default 30 s; at most
	// 5 s when its stream's policy is public, so that a switch to signed
	// applies soon), not ready (default 2 s), unknown (default 1 s).
	VODReadyTTL, VODPendingTTL, VODNegativeTTL time.Duration
	// VODCacheSize bounds the assets cached (LRU); default 10000.
	VODCacheSize int
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Redis == nil {
		return errors.New("router: Redis is required")
	}
	if c.Mode != "" && c.Mode != ModeProxy && c.Mode != ModeRedirect {
		return fmt.Errorf("router: mode must be %s or %s, got %q", ModeProxy, ModeRedirect, c.Mode)
	}
	if c.ShieldSize < 0 {
		return fmt.Errorf("router: shield size must not be negative, got %d", c.ShieldSize)
	}
	if c.Signer != nil {
		if err := c.Signer.Validate(); err != nil {
			return fmt.Errorf("router: %w", err)
		}
	}
	if c.Store != nil {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("router: VOD playback needs the API's base URL, got %q", c.APIURL)
		}
		if c.WorkerSecret == "" {
			return errors.New("router: VOD playback needs the worker secret")
		}
	}
	if c.VODReadyTTL < 0 || c.VODPendingTTL < 0 || c.VODNegativeTTL < 0 || c.VODCacheSize < 0 {
		return errors.New("router: VOD cache lifetimes and size must not be negative")
	}
	return nil
}

// Router is the playback router. It is an http.Handler; Run must run
// alongside it to receive ownership changes.
type Router struct {
	cfg       Config
	log       *slog.Logger
	store     *ownership.Store
	cache     *stateCache
	shield    *shield // nil: disabled
	vod       *vod    // nil: VOD playback disabled
	transport *http.Transport
	blocking  *http.Transport // transport without the header timeout bound, for requests an origin may hold (LL-HLS)
	mux       *http.ServeMux
	bufs      sync.Pool

	requests *prometheus.CounterVec
	upstream prometheus.Histogram
	cacheRes *prometheus.CounterVec
	proxied  prometheus.Counter // requests{outcome=proxied}
	resets   prometheus.Counter
}

// New returns a Router.
func New(cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Mode = cmp.Or(cfg.Mode, ModeProxy)
	cfg.CacheTTL = cmp.Or(cfg.CacheTTL, DefaultCacheTTL)
	cfg.NegativeTTL = cmp.Or(cfg.NegativeTTL, DefaultNegativeTTL)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, DefaultDialTimeout)
	cfg.HeaderTimeout = cmp.Or(cfg.HeaderTimeout, DefaultHeaderTimeout)
	cfg.MaxIdlePerHost = cmp.Or(cfg.MaxIdlePerHost, DefaultMaxIdlePerHost)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.PlaylistTTL = cmp.Or(cfg.PlaylistTTL, DefaultPlaylistTTL)
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rt := &Router{
		cfg:   cfg,
		log:   cfg.Logger,
		store: ownership.New(cfg.Redis, ownership.Config{Prefix: cfg.Prefix, Logger: cfg.Logger}),
		transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          4 * cfg.MaxIdlePerHost,
			MaxIdleConnsPerHost:   cfg.MaxIdlePerHost,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.HeaderTimeout,
			DisableCompression:    true, // pass Accept-Encoding through untouched
		},
		bufs: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_router_requests_total",
			Help: "Playback requests by outcome.",
		}, []string{"outcome"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dionysia_router_upstream_seconds",
			Help:    "Time from sending a request to an origin to receiving its response headers.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		cacheRes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_router_cache_total",
			Help: "Ownership lookups by cache result (hit, negative hit, miss).",
		}, []string{"result"}),
	}
	rt.blocking = rt.transport.Clone()
	rt.blocking.ResponseHeaderTimeout = shieldFetchTimeout
	rt.proxied = rt.requests.WithLabelValues(OutcomeProxied)
	rt.resets = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dionysia_router_ownership_resets_total",
		Help: "Times the router dropped every cached owner and shielded object: at each (re)subscription to the ownership channel and after losing it.",
	})
	collectors := []prometheus.Collector{rt.requests, rt.upstream, rt.cacheRes, rt.resets}
	if cfg.Mode == ModeProxy && cfg.ShieldSize > 0 {
		rt.shield = newShield(cfg.ShieldSize, cfg.PlaylistTTL)
		collectors = append(collectors, rt.shield.collectors()...)
	}
	if cfg.Store != nil {
		rt.vod = newVOD(cfg)
		collectors = append(collectors, rt.vod.collectors()...)
	}
	for _, c := range collectors {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("router: registering metrics: %w", err)
		}
	}
	rt.cache = newStateCache(cfg.CacheTTL, cfg.NegativeTTL, rt.store.State)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", rt.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	for prefix, h := range cfg.Pages {
		mux.Handle(prefix, h)
	}
	rt.mux = mux
	return rt, nil
}

// Run follows the ownership channel and invalidates cached owners until ctx
// ends; it resubscribes by itself after Redis restarts.
func (rt *Router) Run(ctx context.Context) error {
	err := rt.store.Watch(ctx,
		func(ev ownership.Event) {
			rt.cache.invalidate(ev.StreamID)
			if rt.shield != nil {
				rt.shield.invalidate(ev.StreamID)
			}
		},
		func() {
			rt.cache.reset()
			if rt.shield != nil {
				rt.shield.reset()
			}
			rt.resets.Inc()
		})
	rt.transport.CloseIdleConnections()
	return err
}

// Serve listens on addr and serves the router with Run alongside, until ctx
// ends; then it shuts down gracefully.
func (rt *Router) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("router: listening on %s: %w", addr, err)
	}
	return rt.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener.
func (rt *Router) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: rt, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = rt.Run(ctx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	rt.log.Info("router listening", "addr", ln.Addr().String(), "mode", rt.cfg.Mode)
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		serveErr = srv.Shutdown(sctx)
		scancel()
	}
	cancel()
	<-runDone
	if errors.Is(serveErr, http.ErrServerClosed) {
		return nil
	}
	return serveErr
}

// ServeHTTP serves playback paths directly (ServeMux would answer unclean
// paths such as /live/x/../y with a redirect to the cleaned path; the router
// refuses them instead) and everything else through its mux.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, playback.Prefix) {
		rt.live(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, playback.VODPrefix) {
		rt.serveVOD(w, r)
		return
	}
	rt.mux.ServeHTTP(w, r)
}

func (rt *Router) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 500*time.Millisecond)
	defer cancel()
	if err := rt.cfg.Redis.Ping(ctx).Err(); err != nil {
		rt.problem(w, http.StatusServiceUnavailable, "", "redis unreachable: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ready\n")
}

// playbackMethod sets the CORS headers and answers preflights and methods
// other than GET and HEAD; it reports whether the request goes on.
func (rt *Router) playbackMethod(w http.ResponseWriter, r *http.Request) bool {
	cors.Set(w.Header())
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		cors.Preflight(w)
		rt.requests.WithLabelValues(OutcomePreflight).Inc()
		return false
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		rt.problem(w, http.StatusMethodNotAllowed, OutcomeMethod, "only GET, HEAD and OPTIONS are allowed")
		return false
	}
}

func (rt *Router) live(w http.ResponseWriter, r *http.Request) {
	if !rt.playbackMethod(w, r) {
		return
	}
	p, err := playback.ParsePath(r.URL.EscapedPath())
	if err != nil {
		rt.problem(w, http.StatusBadRequest, OutcomeBadPath, "not a playback path: /live/{stream_id}/{file}")
		return
	}
	st, res, err := rt.cache.get(r.Context(), p.StreamID)
	rt.cacheRes.WithLabelValues(res).Inc()
	if err != nil {
		if r.Context().Err() != nil {
			rt.requests.WithLabelValues(OutcomeClientGone).Inc()
			return
		}
		rt.log.Warn("looking up stream owner", "stream_id", p.StreamID, "err", err)
		w.Header().Set("Retry-After", "1")
		rt.problem(w, http.StatusServiceUnavailable, OutcomeRegistryError, "routing registry unavailable")
		return
	}
	if st.Owner == nil && st.Assignment == nil {
		rt.notOwned(w, st)
		return
	}
	if !rt.authorized(w, r, &p, st) {
		return
	}
	if st.Owner == nil {
		rt.notOwned(w, st)
		return
	}
	if rt.cfg.Mode == ModeRedirect {
		loc := strings.TrimSuffix(st.Owner.OriginURL, "/") + playback.URLPath(p.StreamID, p.Token, p.File)
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set(WorkerHeader, st.Owner.WorkerID)
		w.Header().Set("Cache-Control", "no-store")
		rt.requests.WithLabelValues(OutcomeRedirected).Inc()
		http.Redirect(w, r, loc, http.StatusFound)
		return
	}
	rt.proxy(w, r, p, st)
}

// authorized enforces the stream's live playback policy (the policy key the
// control plane writes; a stream without one counts as signed). It writes the
// 403 itself. For a verified token it replaces p.Token with the token the
// origin gets in proxy mode: the same claims without the viewer's address,
// which the origin cannot see.
func (rt *Router) authorized(w http.ResponseWriter, r *http.Request, p *playback.Path, st ownership.State) bool {
	if !st.Signed() {
		return true
	}
	if rt.cfg.Signer == nil {
		rt.problem(w, http.StatusForbidden, OutcomeForbidden, "signed playback is not configured on this router")
		return false
	}
	if err := rt.cfg.Signer.Verify(p.Token, p.StreamID, rt.clientIP(r), rt.cfg.Now()); err != nil {
		rt.problem(w, http.StatusForbidden, OutcomeForbidden, err.Error())
		return false
	}
	if rt.cfg.Mode == ModeProxy {
		tok, err := rt.cfg.Signer.Unbound(p.Token)
		if err != nil {
			rt.problem(w, http.StatusForbidden, OutcomeForbidden, err.Error())
			return false
		}
		p.Token = tok
	}
	return true
}

func (rt *Router) notOwned(w http.ResponseWriter, st ownership.State) {
	if st.Assignment == nil {
		rt.problem(w, http.StatusNotFound, OutcomeNotLive, "stream is not live")
		return
	}
	w.Header().Set("Retry-After", "1")
	rt.problem(w, http.StatusServiceUnavailable, OutcomeFailover, "stream is live but no worker serves it yet")
}

// Request headers passed to the origin.
var forwardHeaders = []string{
	"Range", "If-Range", "If-None-Match", "If-Modified-Since", "Accept", "Accept-Encoding", "User-Agent", "Origin",
}

// Response headers passed back to the viewer.
var returnHeaders = []string{
	"Content-Type", "Content-Length", "Content-Range", "Content-Encoding", "Accept-Ranges", "Cache-Control",
	"ETag", "Last-Modified", "Expires", "Vary", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
}

func (rt *Router) proxy(w http.ResponseWriter, r *http.Request, p playback.Path, st ownership.State) {
	if rt.shield != nil && rt.shielded(w, r, p, st.Owner) {
		return
	}
	res, owner, err := rt.roundTrip(r, p, st.Owner)
	if err == nil && res.StatusCode == http.StatusNotFound && res.Header.Get(originStatusHeader) == notHeld {
		// The origin no longer (or not yet) holds the stream: ownership moved.
		res.Body.Close()
		res, owner, err = rt.retry(r, p, owner)
		if errors.Is(err, errSameOwner) || (err == nil && res.StatusCode == http.StatusNotFound && res.Header.Get(originStatusHeader) == notHeld) {
			if err == nil {
				res.Body.Close()
			}
			w.Header().Set("Retry-After", "1")
			rt.problem(w, http.StatusServiceUnavailable, OutcomeFailover, "stream is moving between workers")
			return
		}
	} else if err != nil && r.Context().Err() == nil {
		rt.log.Warn("origin unreachable, looking up the owner again", "stream_id", p.StreamID,
			"worker_id", owner.WorkerID, "err", err)
		res, owner, err = rt.retry(r, p, owner)
	}
	if err != nil {
		if r.Context().Err() != nil {
			rt.requests.WithLabelValues(OutcomeClientGone).Inc()
			return
		}
		var ne notOwnedError
		if errors.As(err, &ne) {
			rt.notOwned(w, ne.st)
			return
		}
		rt.log.Warn("proxying to origin", "stream_id", p.StreamID, "worker_id", owner.WorkerID, "err", err)
		if errors.Is(err, errSameOwner) {
			// The registered owner is down; its lease will expire and the
			// session fail over. Tell the player to come back.
			w.Header().Set("Retry-After", "1")
			rt.problem(w, http.StatusServiceUnavailable, OutcomeUpstreamError, "origin unreachable, stream failing over")
			return
		}
		rt.problem(w, http.StatusBadGateway, OutcomeUpstreamError, "origin unreachable")
		return
	}
	defer res.Body.Close()
	hd := w.Header()
	for _, k := range returnHeaders {
		if vs := res.Header.Values(k); len(vs) > 0 {
			hd[k] = vs
		}
	}
	hd.Set(WorkerHeader, owner.WorkerID)
	rt.proxied.Inc()
	w.WriteHeader(res.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	buf := rt.bufs.Get().(*[]byte)
	defer rt.bufs.Put(buf)
	var dst io.Writer = w
	if res.Header.Get(originStreamingHeader) != "" {
		dst = flushWriter{w, http.NewResponseController(w)}
	}
	if _, err := io.CopyBuffer(dst, res.Body, *buf); err != nil && r.Context().Err() == nil {
		rt.log.Debug("copying origin response", "stream_id", p.StreamID, "err", err)
	}
}

// flushWriter sends every write on at once (a streamed low-latency segment
// reaches the player part by part).
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// errSameOwner: the owner that just failed is still the registered one.
var errSameOwner = errors.New("owner unchanged")

type notOwnedError struct{ st ownership.State }

func (e notOwnedError) Error() string { return "stream has no live owner" }

// retry looks the owner up in Redis again (the cached one failed) and sends
// the request once more.
func (rt *Router) retry(r *http.Request, p playback.Path, failed *ownership.Owner) (*http.Response, *ownership.Owner, error) {
	st, err := rt.cache.fresh(r.Context(), p.StreamID)
	if err != nil {
		return nil, failed, fmt.Errorf("looking up owner again: %w", err)
	}
	if st.Owner == nil {
		return nil, failed, notOwnedError{st: st}
	}
	if st.Owner.Token == failed.Token {
		// Same lease: trying the same origin again would only wait twice.
		return nil, failed, errSameOwner
	}
	return rt.roundTrip(r, p, st.Owner)
}

// roundTrip sends the request to the owner's origin, with the token (the
// origin checks the policy too: it may have seen a change before this
// router) and the query (a thumbnail's ?width=), as a redirect would.
func (rt *Router) roundTrip(r *http.Request, p playback.Path, owner *ownership.Owner) (*http.Response, *ownership.Owner, error) {
	target := strings.TrimSuffix(owner.OriginURL, "/") + playback.URLPath(p.StreamID, p.Token, p.File)
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, nil)
	if err != nil {
		return nil, owner, fmt.Errorf("building origin request: %w", err)
	}
	for _, k := range forwardHeaders {
		if vs := r.Header.Values(k); len(vs) > 0 {
			req.Header[k] = vs
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "dionysia-router")
	}
	req.Header.Set("X-Forwarded-For", rt.clientIP(r))
	start := time.Now()
	transport := rt.transport
	if mayBlock(p.File, llQuery(r.URL.Query(), kindOf(p.File))) {
		transport = rt.blocking
	}
	res, err := transport.RoundTrip(req)
	if err != nil {
		return nil, owner, fmt.Errorf("requesting %s: %w", target, err)
	}
	rt.upstream.Observe(time.Since(start).Seconds())
	return res, owner, nil
}

func (rt *Router) clientIP(r *http.Request) string {
	if rt.cfg.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			return strings.TrimSpace(first)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (rt *Router) problem(w http.ResponseWriter, status int, outcome, detail string) {
	if outcome != "" {
		rt.requests.WithLabelValues(outcome).Inc()
	}
	problem.Error(w, status, detail)
}
