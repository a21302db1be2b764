// Package api is Dionysia's management REST API (/api/v1): streams, profiles,
// API keys, sessions, workers, playback tokens and webhooks, with bearer-key
// authentication, RFC 9457 problem documents for every error, Prometheus
// metrics, health endpoints and an OpenAPI document. It also serves the
// internal endpoints (/internal/v1) the ingest edges and the workers call,
// each authenticated with its own shared secret.
//
// App (app.go) is `dionysia api` wired in one place: it constructs the
// server with the ingest lifecycle and the dispatcher, and runs the HTTP
// server and the dispatch watchdog together.
//
// Later parts of the system add their route groups to the server before it
// runs: V1 is the authenticated /api/v1 group, Echo the whole router.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/netguard"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/health"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// ServerDeps are the server's collaborators, built by NewApp.
type ServerDeps struct {
	Store *store.Store
	// Pool is the store's pool, checked by /readyz and described by /metrics.
	Pool *pgxpool.Pool
	// Redis is checked by /readyz.
	Redis redis.UniversalClient
	// Fleet lists the workers (/api/v1/workers).
	Fleet *fleet.Registry
	// Owners is the ownership registry, whose playback policy keys routers
	// and origins read: a PATCH of playback_policy updates them at once.
	Owners *ownership.Store
	// Ingest serves the edges' endpoints and kicks publishers; nil without
	// an edge secret (the edge endpoints answer 503).
	Ingest *ingest.Service
	// Signer mints playback tokens; nil without playback keys (503).
	Signer *playback.Signer
	// Objects is the object store of recordings (DELETE /assets/{id}
	// removes an asset's objects from it).
	Objects storage.Store
	// Finalizer builds assets; a final recording report kicks it. Nil:
	// assets are built by the finalizer of another process.
	Finalizer *AssetFinalizer
	// Resolver resolves webhook hosts for the SSRF check; nil means the
	// system's.
	Resolver netguard.Resolver
	// Registry receives the server's metrics and is served at /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// Server is the management API's HTTP server.
type Server struct {
	cfg     config.API
	store   *store.Store
	pool    *pgxpool.Pool
	redis   redis.UniversalClient
	log     *slog.Logger
	e       *echo.Echo
	v1      *echo.Group
	metrics *metrics
	touch   *touchThrottle

	ingest *ingest.Service // nil without an edge secret
	fleet  *fleet.Registry
	owners *ownership.Store // the live view routers and origins read (playback policy)
	signer *playback.Signer // nil without playback keys
	health *health.Recorder
	guard  netguard.Guard // checks webhook targets

	objects   storage.Store   // recordings
	finalizer *AssetFinalizer // nil: none in this process
}

// NewServer builds the server and its routes. cfg is completed with its
// defaults and validated.
func NewServer(cfg config.API, d ServerDeps) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	if d.Store == nil || d.Pool == nil || d.Redis == nil || d.Fleet == nil || d.Owners == nil || d.Registry == nil || d.Objects == nil {
		return nil, errors.New("api: Store, Pool, Redis, Fleet, Owners, Objects and Registry are required")
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(d.Registry, d.Pool)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: d.Store, pool: d.Pool, redis: d.Redis, log: log, metrics: m, touch: newTouchThrottle(time.Minute),
		ingest: d.Ingest, fleet: d.Fleet, owners: d.Owners, signer: d.Signer, objects: d.Objects, finalizer: d.Finalizer,
		health: &health.Recorder{Store: d.Store, Logger: log},
		guard:  netguard.Guard{AllowPrivate: cfg.AllowPrivateTargets, Resolver: d.Resolver}}
	if err := d.Registry.Register(health.NewCollector(d.Store, log)); err != nil {
		return nil, fmt.Errorf("registering stream health metrics: %w", err)
	}

	s.e = echo.NewWithConfig(echo.Config{Logger: log, HTTPErrorHandler: s.handleError})
	// observe is outermost: it hands errors to handleError itself, so that the
	// status it records and logs is the one the client gets.
	s.e.Use(s.observe, middleware.Recover(), s.limitBody)

	s.e.GET("/healthz", s.healthz)
	s.e.GET("/readyz", s.readyz)
	s.e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	s.e.GET("/api/v1/openapi.json", serveOpenAPI)

	s.v1 = s.e.Group("/api/v1", s.authenticate)
	s.streamRoutes(s.v1)
	s.profileRoutes(s.v1)
	s.apiKeyRoutes(s.v1.Group("/api-keys", requireScope(store.ScopeAdmin)))
	s.workerRoutes(s.v1)
	s.eventRoutes(s.v1)
	s.webhookRoutes(s.v1)
	s.assetRoutes(s.v1)
	s.internalRoutes(s.e.Group("/internal/v1"))
	return s, nil
}

// Handler returns the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.e }

// Echo returns the router, for adding routes outside /api/v1 (such as internal
// endpoints with their own authentication) before the server runs.
func (s *Server) Echo() *echo.Echo { return s.e }

// V1 returns the authenticated /api/v1 group, for adding resource routes
// before the server runs. Every route added must be described in the OpenAPI
// document (a test enforces it).
func (s *Server) V1() *echo.Group { return s.v1 }

// Serve serves on ln until ctx is cancelled, then stops accepting
// connections and waits up to the shutdown timeout for in-flight requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.InfoContext(ctx, "api listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving api: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting the api down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving api: %w", err)
	}
	s.log.InfoContext(ctx, "api stopped")
	return nil
}

// limitBody caps request bodies at the configured size: a declared length over
// the limit is refused at once, a longer body fails when read (413 either way).
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		req := c.Request()
		if req.ContentLength > s.cfg.BodyLimit {
			return &http.MaxBytesError{Limit: s.cfg.BodyLimit}
		}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = http.MaxBytesReader(c.Response(), req.Body, s.cfg.BodyLimit)
		}
		return next(c)
	}
}

// observe logs each request (method, route, status, duration; never headers or
// bodies) and records its duration.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			s.handleError(c, err)
		}
		_, status := echo.ResolveResponseStatus(c.Response(), nil)
		route := c.Path()
		if route == "" || c.RouteInfo().Method == echo.RouteNotFound {
			route = "unmatched"
		}
		d := time.Since(start)
		s.metrics.observe(route, c.Request().Method, status, d)
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
			slog.String("method", c.Request().Method), slog.String("route", route),
			slog.String("path", c.Request().URL.Path), slog.Int("status", status), slog.Duration("duration", d))
		return nil
	}
}
