package api

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/dispatch"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/dionysia/dionysia/services/internal/webhook"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Deps are the connections `dionysia api` runs on. The caller opens and
// closes them (the CLI from its configuration, tests from theirs).
type Deps struct {
	Store *store.Store
	// Pool is the store's pool.
	Pool *pgxpool.Pool
	// Redis holds the task queues, the worker registry, stream ownership and
	// stop signals.
	Redis redis.UniversalClient
	// RedisPrefix prefixes the Redis keys shared with the workers and
	// routers; empty means conf.DefaultRedisPrefix (what they use). Tests set
	// their own to stay apart.
	RedisPrefix string
	// Objects is the object store of recordings (conf.Storage): the VOD
	// files of built assets go there, deleted assets leave it.
	Objects storage.Store
	// Registry receives every component's metrics and is served at /metrics.
	Registry *prometheus.Registry
	Logger   *slog.Logger
}

// App is `dionysia api`, wired in one place: NewApp constructs every
// component in dependency order, Run starts them and stops them in the
// reverse order. Read it top to bottom to see what the binary is made of.
type App struct {
	cfg        config.API
	log        *slog.Logger
	server     *Server
	dispatcher *dispatch.Dispatcher
	ingest     *ingest.Service // nil without an edge secret
	deliverer  *webhook.Deliverer
	pruner     *EventPruner
	finalizer  *AssetFinalizer
	retention  *AssetRetention
}

// NewApp constructs the API's components; it starts nothing. cfg is
// completed with its defaults and validated.
func NewApp(cfg config.API, d Deps) (*App, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("api config: %w", err)
	}
	log := cmp.Or(d.Logger, slog.New(slog.DiscardHandler))
	prefix := cmp.Or(d.RedisPrefix, conf.DefaultRedisPrefix)

	// The worker fleet and the stream ownership registry (shared with the
	// workers and the routers through Redis).
	workers := fleet.New(d.Redis, fleet.Config{Prefix: prefix, Logger: log})
	owners := ownership.New(d.Redis, ownership.Config{Prefix: prefix, Logger: log})

	// The dispatcher enqueues a transcode per live session; its watchdog
	// re-dispatches sessions whose worker is gone (started by Run).
	// Its look at the fleet records worker.up and worker.lost.
	workerEvents := &WorkerEvents{Store: d.Store, Logger: log}
	disp, err := dispatch.New(d.Redis, workers, owners, ingest.Transcodes{Store: d.Store, EdgeSecret: cfg.EdgeSecret},
		dispatch.Config{Dispatch: cfg.Dispatch, Prefix: prefix, Logger: log, Registerer: d.Registry,
			ObserveFleet: workerEvents.Observe})
	if err != nil {
		return nil, err
	}

	// The ingest lifecycle: the edges' publish decisions and live reports.
	var ing *ingest.Service
	if cfg.EdgeSecret == "" {
		log.Warn(conf.EdgeSecret.Env + " is not set: the edge endpoints answer 503 and no stream can go live")
	} else {
		ing, err = ingest.New(d.Store, disp, job.StopSignal{Redis: d.Redis, Prefix: prefix},
			ingest.Config{EdgeSecret: cfg.EdgeSecret, ReconnectGrace: cfg.Dispatch.ReconnectGrace,
				EventData: EventData{Public: cfg.Public}, Workers: ingest.LastSeenFunc(lastHeartbeat(workers)),
				Logger: log, Registerer: d.Registry})
		if err != nil {
			return nil, err
		}
	}
	if cfg.WorkerSecret == "" {
		log.Warn(conf.WorkerSecret.Env + " is not set: the worker session events endpoint answers 503")
	}

	// The playback token signer.
	var signer *playback.Signer
	if cfg.PlaybackKeys == "" {
		log.Warn(conf.PlaybackKeys.Env + " is not set: playback tokens cannot be minted (503)")
	} else if signer, err = playback.ParseKeys(cfg.PlaybackKeys); err != nil {
		return nil, fmt.Errorf("api config: %s: %w", conf.PlaybackKeys.Env, err)
	}

	// The webhook delivery worker: every API process sends the deliveries
	// the event log fans out (migration 00008), sharing them through the
	// database.
	deliverer, err := webhook.New(d.Store, d.Pool, webhook.Config{Webhooks: cfg.Webhooks,
		AllowPrivateTargets: cfg.AllowPrivateTargets, Logger: log, Registerer: d.Registry})
	if err != nil {
		return nil, err
	}
	if cfg.AllowPrivateTargets {
		log.Warn(config.VarAllowPrivateTargets.Env + " is set: webhooks may reach loopback, private and link-local addresses")
	}

	// Recordings: the finalizer builds the assets whose session is over,
	// retention deletes the expired ones (docs/recording.md).
	if d.Objects == nil {
		return nil, fmt.Errorf("api: Objects (the object store of recordings) is required")
	}
	data := EventData{Public: cfg.Public}
	finalizer := NewAssetFinalizer(d.Store, d.Objects, data, log)
	retention := &AssetRetention{Store: d.Store, Objects: d.Objects, Data: data, Logger: log}

	// The HTTP server: /api/v1, /internal/v1, health and metrics.
	srv, err := NewServer(cfg, ServerDeps{Store: d.Store, Pool: d.Pool, Redis: d.Redis, Fleet: workers, Owners: owners, Ingest: ing,
		Signer: signer, Objects: d.Objects, Finalizer: finalizer, Registry: d.Registry, Logger: log})
	if err != nil {
		return nil, err
	}
	// The event log's retention.
	pruner := &EventPruner{Store: d.Store, Retention: cfg.EventRetention, Logger: log}
	return &App{cfg: cfg, log: log, server: srv, dispatcher: disp, ingest: ing, pruner: pruner, deliverer: deliverer,
		finalizer: finalizer, retention: retention}, nil
}

// lastHeartbeat looks a worker's last heartbeat up in the fleet: where a
// stream.failover's gap starts.
func lastHeartbeat(workers *fleet.Registry) func(ctx context.Context, id string) (time.Time, bool, error) {
	return func(ctx context.Context, id string) (time.Time, bool, error) {
		ws, err := workers.List(ctx)
		if err != nil {
			return time.Time{}, false, err
		}
		for _, w := range ws {
			if w.ID == id {
				return w.LastSeen, true, nil
			}
		}
		return time.Time{}, false, nil
	}
}

// Run starts the background loops (RunBackground) and serves HTTP on ln
// until ctx is cancelled; then it stops the HTTP server first (in-flight
// requests get the shutdown timeout, no new session starts), and the
// background loops last.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	backgroundCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	backgroundDone := make(chan struct{})
	go func() {
		defer close(backgroundDone)
		a.RunBackground(backgroundCtx) // returns once backgroundCtx is cancelled
	}()

	err := a.server.Serve(ctx, ln)

	stopBackground()
	<-backgroundDone
	return err
}

// RunBackground runs the dispatch watchdog, the ingest lifecycle's worker
// stops, the event log's pruner, the webhook delivery worker, the asset
// finalizer and the asset retention until ctx ends. Run runs it; tests that serve Handler themselves run it too.
func (a *App) RunBackground(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.dispatcher.Run(ctx) })
	wg.Go(func() { _ = a.pruner.Run(ctx) })
	wg.Go(func() { _ = a.deliverer.Run(ctx) })
	wg.Go(func() { _ = a.finalizer.Run(ctx) })
	wg.Go(func() { _ = a.retention.Run(ctx) })
	if a.ingest != nil {
		wg.Go(func() { _ = a.ingest.Run(ctx) })
	}
	wg.Wait()
}

// Handler returns the HTTP handler serving every route (tests serve it
// with httptest; Run serves it on its listener).
func (a *App) Handler() http.Handler { return a.server.Handler() }

// Echo returns the router (tests list its routes).
func (a *App) Echo() *echo.Echo { return a.server.Echo() }
