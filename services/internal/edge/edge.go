// Package edge is the ingest edge (`dionysia edge`): it runs the pinned
// mediamtx as a supervised child, decides publish and read attempts with the
// management API, tells the API which streams are live, and kicks publishers
// the API wants gone.
//
// Flow: mediamtx → its HTTP auth (loopback) → the edge's hook listener → POST
// {api}/internal/v1/edge/auth with the edge↔API secret. The edge polls
// mediamtx's /v3/paths/list every PollInterval, turns changes into ready /
// not_ready events for the API, and sends the full live set every
// SyncInterval; the sync answer carries kick requests. The contract is package
// edgeapi; docs/edge.md explains the choices.
package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dionysia/dionysia/services/internal/edge/mediamtx"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
)

// Edge is one ingest edge. Create it with New, run it with Run.
type Edge struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	api     *edgeapi.Client
	mtx     *mediamtx.Client
	sup     *mediamtx.Supervisor
	bootID  string

	// Per-run credential of mediamtx's control API: only the edge knows it,
	// it is never written anywhere (the auth hook checks it).
	mtxUser, mtxPass string

	started   chan struct{} // closed once the listeners are bound (or Run failed)
	startOnce sync.Once
	trackDone chan struct{} // closed when the tracking loop has stopped
	hookAddr  string
	adminAddr string

	kicks chan kickCall // admin kick endpoint → tracker
	nudge chan struct{} // auth accepted a publisher → poll faster
	done  chan struct{} // closed when Run returns
	runMu sync.Mutex    // one Run at a time
	ran   bool

	mu         sync.Mutex
	live       map[string]*liveStream // path → stream; written by the tracker only
	allowed    map[string]allowance   // mediamtx conn ID → accepted publisher
	connPaths  map[string]string      // mediamtx log prefix of a publishing conn → path
	closed     map[string]closeNote   // path → how its last publisher closed (from the log)
	lastPollOK time.Time
	pollGen    int // supervisor generation of the last successful poll
	apiOK      bool

	tr tracker // the tracking loop's own state (track, then finish)
}

// New checks cfg (after applying defaults) and registers the edge's metrics on
// reg. It starts nothing: call Run.
func New(cfg Config, logger *slog.Logger, reg *prometheus.Registry) (*Edge, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid edge config: %w", err)
	}
	if logger == nil {
		return nil, errors.New("logger is required")
	}
	if reg == nil {
		return nil, errors.New("prometheus registry is required")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	e := &Edge{
		cfg:       cfg,
		log:       logger.With("component", "edge", "edge_id", cfg.ID),
		reg:       reg,
		metrics:   m,
		bootID:    randomHex(8),
		mtxUser:   "edge-" + randomHex(4),
		mtxPass:   randomHex(24),
		started:   make(chan struct{}),
		kicks:     make(chan kickCall),
		nudge:     make(chan struct{}, 1),
		done:      make(chan struct{}),
		trackDone: make(chan struct{}),
		live:      map[string]*liveStream{},
		allowed:   map[string]allowance{},
		connPaths: map[string]string{},
		closed:    map[string]closeNote{},
	}
	e.api = &edgeapi.Client{
		BaseURL: cfg.APIURL,
		Secret:  cfg.Secret,
		HTTP:    &http.Client{Timeout: cfg.APITimeout + time.Second},
	}
	e.mtx = &mediamtx.Client{
		BaseURL:  "http://" + cfg.MediaMTXAPIAddress,
		User:     e.mtxUser,
		Password: e.mtxPass,
		HTTP:     &http.Client{Timeout: 5 * time.Second},
	}
	e.sup = &mediamtx.Supervisor{
		Binary:      cfg.MediaMTXPath,
		ConfigPath:  filepath.Join(cfg.WorkDir, "mediamtx.yml"),
		Dir:         cfg.WorkDir,
		Logger:      logger.With("component", "mediamtx", "edge_id", cfg.ID),
		BackoffMin:  cfg.RestartBackoffMin,
		BackoffMax:  cfg.RestartBackoffMax,
		StopTimeout: cfg.StopTimeout,
		OnLine:      e.onLogLine,
		OnRestart:   m.restarts.Inc,
	}
	return e, nil
}

// Started is closed once Run has bound its listeners (HookAddr and AdminAddr
// are then known), or has failed to.
func (e *Edge) Started() <-chan struct{} { return e.started }

// Done is closed when Run has returned.
func (e *Edge) Done() <-chan struct{} { return e.done }

// HookAddr is the bound loopback address mediamtx calls; it waits for
// Started and is "" if Run failed to bind.
func (e *Edge) HookAddr() string { <-e.started; return e.hookAddr }

// AdminAddr is the bound admin address; it waits for Started and is "" if
// Run failed to bind.
func (e *Edge) AdminAddr() string { <-e.started; return e.adminAddr }

// ChildState is the supervisor's view of the mediamtx child.
func (e *Edge) ChildState() mediamtx.State { return e.sup.State() }

// Run binds the hook and admin listeners, writes mediamtx's config, runs and
// supervises mediamtx and the tracker until ctx is cancelled, then stops
// cleanly: mediamtx is stopped (SIGTERM, then SIGKILL after StopTimeout), live
// streams are reported ended with reason edge_shutdown and a last, empty sync
// is sent. It returns an error only if it could not start.
func (e *Edge) Run(ctx context.Context) error {
	e.runMu.Lock()
	if e.ran {
		e.runMu.Unlock()
		return errors.New("edge already ran")
	}
	e.ran = true
	e.runMu.Unlock()
	defer close(e.done)
	markStarted := func() { e.startOnce.Do(func() { close(e.started) }) }
	defer markStarted() // also on early errors: HookAddr/AdminAddr never block forever

	hookLn, err := net.Listen("tcp", e.cfg.HookAddress)
	if err != nil {
		return fmt.Errorf("listening for mediamtx hooks: %w", err)
	}
	adminLn, err := net.Listen("tcp", e.cfg.AdminAddress)
	if err != nil {
		hookLn.Close()
		return fmt.Errorf("listening for admin: %w", err)
	}
	e.hookAddr, e.adminAddr = hookLn.Addr().String(), adminLn.Addr().String()

	udp := e.cfg.WebRTCUDPPort
	if udp < 0 {
		udp = 0
	}
	mcfg := mediamtx.Config{
		BindAddress:     e.cfg.BindAddress,
		RTMPPort:        e.cfg.RTMPPort,
		SRTPort:         e.cfg.SRTPort,
		RTSPPort:        e.cfg.RTSPPort,
		WebRTCPort:      e.cfg.WebRTCPort,
		WebRTCUDPPort:   udp,
		APIAddress:      e.cfg.MediaMTXAPIAddress,
		AuthHTTPAddress: "http://" + e.hookAddr + hookAuthPath,
		LogLevel:        e.cfg.MediaMTXLogLevel,
		ReadTimeout:     e.cfg.PublisherTimeout.String(),
	}
	if e.cfg.AdvertiseHost != "" {
		mcfg.WebRTCAdditionalHosts = []string{e.cfg.AdvertiseHost}
	}
	if err := mcfg.WriteFile(e.sup.ConfigPath); err != nil {
		hookLn.Close()
		adminLn.Close()
		return fmt.Errorf("writing mediamtx config: %w", err)
	}
	markStarted()
	e.log.Info("edge starting", "config", e.cfg, "hook_addr", e.hookAddr, "admin_addr", e.adminAddr)

	hookSrv := &http.Server{Handler: e.hookHandler(), ReadHeaderTimeout: 5 * time.Second}
	adminSrv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 5 * time.Second}
	var servers sync.WaitGroup
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{hookSrv, hookLn}, {adminSrv, adminLn}} {
		servers.Add(1)
		go func() {
			defer servers.Done()
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("http server failed", "addr", s.ln.Addr().String(), "err", err)
			}
		}()
	}

	supCtx, supCancel := context.WithCancel(context.WithoutCancel(ctx))
	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		_ = e.sup.Run(supCtx) // only returns nil, once supCtx is cancelled
	}()

	e.track(ctx) // returns when ctx is cancelled
	close(e.trackDone)

	supCancel()
	<-supDone
	e.finish()

	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, s := range []*http.Server{hookSrv, adminSrv} {
		if err := s.Shutdown(shutCtx); err != nil {
			e.log.Warn("stopping http server", "err", err)
		}
	}
	servers.Wait()
	e.log.Info("edge stopped")
	return nil
}

// Handler serves /healthz, /readyz, /metrics and POST /internal/v1/edge/kick
// (Bearer secret) for the admin listener.
func (e *Edge) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", e.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST "+edgeapi.KickPath, e.handleKick)
	return mux
}

// Readiness is the body of /readyz.
type Readiness struct {
	Ready       bool      `json:"ready"`
	Child       string    `json:"child"` // running, down
	PID         int       `json:"pid,omitempty"`
	Generation  int       `json:"generation"`
	Restarts    int       `json:"restarts"`
	LastPoll    time.Time `json:"last_poll,omitzero"`
	LiveStreams int       `json:"live_streams"`
	APIOK       bool      `json:"api_ok"` // the last call to the API succeeded
}

// Readiness reports whether mediamtx runs and answers its API.
func (e *Edge) Readiness() Readiness {
	st := e.sup.State()
	e.mu.Lock()
	defer e.mu.Unlock()
	fresh := time.Since(e.lastPollOK) <= max(3*e.cfg.PollInterval, 3*time.Second)
	r := Readiness{
		Ready:       st.Running && fresh && e.pollGen == st.Generation,
		Child:       "down",
		PID:         st.PID,
		Generation:  st.Generation,
		Restarts:    st.Restarts,
		LastPoll:    e.lastPollOK,
		LiveStreams: len(e.live),
		APIOK:       e.apiOK,
	}
	if st.Running {
		r.Child = "running"
	}
	return r
}

func (e *Edge) handleReady(w http.ResponseWriter, _ *http.Request) {
	r := e.Readiness()
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

func (e *Edge) handleKick(w http.ResponseWriter, r *http.Request) {
	if !edgeapi.CheckSecret(r, e.cfg.Secret) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong edge secret"})
		return
	}
	var req edgeapi.KickRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a JSON KickRequest: " + err.Error()})
		return
	}
	reply := make(chan int, 1)
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	select {
	case e.kicks <- kickCall{kicks: req.Kick, reply: reply}:
	case <-e.trackDone:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "edge is stopping"})
		return
	case <-ctx.Done():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "edge is busy or stopping"})
		return
	}
	select {
	case n := <-reply:
		writeJSON(w, http.StatusOK, edgeapi.KickResponse{Kicked: n})
	case <-ctx.Done():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "edge is busy or stopping"})
	}
}

// edgeInfo is how the API reaches this edge.
func (e *Edge) edgeInfo() edgeapi.EdgeInfo {
	info := edgeapi.EdgeInfo{
		ID:         e.cfg.ID,
		PublicHost: e.cfg.AdvertiseHost,
		RTMPPort:   e.cfg.RTMPPort,
		SRTPort:    e.cfg.SRTPort,
		RTSPPort:   e.cfg.RTSPPort,
		WebRTCPort: e.cfg.WebRTCPort,
	}
	if _, port, err := net.SplitHostPort(e.adminAddr); err == nil {
		if host, _, err := net.SplitHostPort(e.cfg.AdminAddress); err == nil {
			ip := net.ParseIP(host)
			if host == "" || (ip != nil && ip.IsUnspecified()) {
				host = e.cfg.AdvertiseHost
			}
			info.KickURL = "http://" + net.JoinHostPort(host, port) + edgeapi.KickPath
		}
	}
	return info
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on a broken system source)
	return hex.EncodeToString(b)
}
