// Package worker is the dionysia-worker process: it probes its hardware,
// registers in the fleet, serves its output as an origin and runs transcode
// tasks from the asynq queues of its hardware class.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/workers/internal/hwprobe"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/origin"
	"github.com/dionysia/dionysia/workers/internal/pipeline"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// Queues returns the asynq queues a worker of the class listens to, with
// their priorities: a GPU worker prefers GPU jobs and also takes CPU jobs.
func Queues(class string) map[string]int {
	if class == job.ClassGPU {
		return map[string]int{job.QueueGPU: 6, job.QueueCPU: 1}
	}
	return map[string]int{job.QueueCPU: 1}
}

// Run runs a worker until ctx ends, then shuts down gracefully: running
// transcodes are stopped (their streams are taken over by other workers) and
// the worker leaves the fleet.
func Run(ctx context.Context, cfg Config, log *slog.Logger, version string) error {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}

	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}

	probe, err := hwprobe.Probe(ctx, hwprobe.Options{
		MaxStreams:    cfg.Capacity,
		NVENCSessions: cfg.NVENCSessions,
		CPUOnly:       cfg.Class == "cpu",
		Logger:        log,
	})
	if err != nil {
		return fmt.Errorf("probing hardware: %w", err)
	}
	log.Info("hardware probed", "class", probe.Class, "encoder", probe.Encoder, "decoder", probe.Decoder,
		"encoders", probe.Encoders, "capacity", probe.Capacity)
	for _, r := range probe.Reasons {
		log.Info("probe", "reason", r)
	}

	opt, err := cfg.Redis.Options()
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pmetrics, err := pipeline.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering pipeline metrics: %w", err)
	}

	handler := &Handler{
		WorkerID:    cfg.ID,
		OriginURL:   cfg.OriginURL,
		DataDir:     cfg.DataDir,
		Store:       store,
		Ownership:   ownership.New(rdb, ownership.Config{Prefix: cfg.Redis.Prefix, TTL: cfg.LeaseTTL, Logger: log}),
		Stops:       job.StopSignal{Redis: rdb, Prefix: cfg.Redis.Prefix},
		Reporter:    &Reporter{APIURL: cfg.APIURL, Secret: cfg.Secret, Logger: log},
		Source:      (&Sources{APIURL: cfg.APIURL, Secret: cfg.Secret}).Fetch,
		Logger:      log,
		Retention:   cfg.Retention,
		SourceGrace: cfg.SourceGrace,
		Changes:     origin.NewBroadcast(),
	}
	handler.Run = PipelineRunner(probe.Backend, pmetrics,
		&HealthReporter{APIURL: cfg.APIURL, Secret: cfg.Secret, WorkerID: cfg.ID, Logger: log}, handler.thumbnails, log)
	handler.Metrics, err = NewMetrics(reg, handler.Load, probe.Capacity)
	if err != nil {
		return fmt.Errorf("registering worker metrics: %w", err)
	}

	mux, err := NewServeMux(cfg, handler.Holds, handler.Changes, handler.Ownership, rdb, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.OriginAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.OriginAddr, err)
	}
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       probe.Capacity,
		Queues:            Queues(probe.Class),
		TaskCheckInterval: 200 * time.Millisecond,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		Logger:            asynqLogger{log.With("component", "asynq")},
		LogLevel:          asynq.WarnLevel,
		BaseContext:       func() context.Context { return ctx },
	})
	amux := asynq.NewServeMux()
	amux.Handle(job.TypeTranscode, handler)

	registry := fleet.New(rdb, fleet.Config{Prefix: cfg.Redis.Prefix, Logger: log})
	host, _ := os.Hostname()
	started := time.Now().UTC()
	snapshot := func() fleet.Worker {
		return fleet.Worker{
			ID: cfg.ID, Host: host, OriginURL: cfg.OriginURL, Class: probe.Class,
			Capacity: probe.Capacity, Load: handler.Load(), Version: version,
			Encoders: probe.Encoders, StartedAt: started,
		}
	}

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("origin server: %w", err)
		}
	})
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() {
		if err := registry.Run(hbCtx, snapshot); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("fleet heartbeat: %w", err)
		}
	})
	if err := srv.Start(amux); err != nil {
		stopHeartbeat()
		_ = httpSrv.Close()
		wg.Wait()
		return fmt.Errorf("starting task server: %w", err)
	}
	log.Info("worker running", "id", cfg.ID, "origin", cfg.OriginURL, "queues", Queues(probe.Class))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("worker stopping")
	// Stop taking tasks and cancel running ones: their handlers release the
	// ownership leases, so the control plane's watchdog hands the streams to
	// other workers without waiting for a lease to expire.
	srv.Shutdown()
	stopHeartbeat()
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := registry.Deregister(dctx, cfg.ID); err != nil {
		log.Warn("leaving the fleet", "err", err)
	}
	_ = httpSrv.Shutdown(dctx)
	wg.Wait()
	return runErr
}

// openStore opens the recording store. An unusable URL is an error; a store
// that does not answer now only a warning: recorded files queue and retry.
// Files spooled by an earlier process are removed: nobody will upload them.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (storage.Store, error) {
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, SpoolDirName)); err != nil {
		return nil, fmt.Errorf("clearing the recording spool: %w", err)
	}
	store, err := storage.Open(ctx, cfg.Storage.URL, storage.Options{
		AccessKeyID: cfg.Storage.AccessKeyID, SecretAccessKey: cfg.Storage.SecretAccessKey,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the recording store (%s): %w", storage.Redact(cfg.Storage.URL), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := store.Ping(pctx); err != nil {
		log.Warn("the recording store is not usable now; recordings queue and retry until it is", "store", store.String(), "err", err)
	} else {
		log.Info("recording store", "store", store.String())
	}
	return store, nil
}

// NewServeMux is the worker's HTTP surface as Run serves it: the origin at
// /live/ (streams this worker holds, each under its live playback policy read
// from the ownership registry, tokens verified with cfg.PlaybackKeys), and
// /metrics, /healthz, /readyz.
func NewServeMux(cfg Config, holds func(string) bool, changes *origin.Broadcast, owners *ownership.Store, rdb redis.UniversalClient,
	reg *prometheus.Registry, log *slog.Logger) (*http.ServeMux, error) {
	var signer *playback.Signer
	if cfg.PlaybackKeys == "" {
		log.Warn("DIONYSIA_PLAYBACK_KEYS is not set: this origin refuses every signed stream (403)")
	} else {
		var err error
		if signer, err = playback.ParseKeys(cfg.PlaybackKeys); err != nil {
			return nil, fmt.Errorf("DIONYSIA_PLAYBACK_KEYS: %w", err)
		}
	}
	ocfg := origin.Config{
		DataDir: cfg.DataDir, Holds: holds, WorkerID: cfg.ID, Logger: log, Registry: reg,
		Signed: (&origin.Policies{Lookup: owners.Policy, Logger: log}).Signed,
		Signer: signer,
	}
	if changes != nil {
		ocfg.Changes = changes
	}
	originHandler, err := origin.New(ocfg)
	if err != nil {
		return nil, fmt.Errorf("creating origin: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/live/", originHandler)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := rdb.Ping(r.Context()).Err(); err != nil {
			http.Error(w, "redis unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux, nil
}

// PipelineRunner returns the RunFunc that runs the GStreamer pipeline with the
// probed backend, marking failures a restart cannot fix as ErrPermanent.
// While a run lasts, health (nil: none) reports its measurements; thumbnails
// (nil: none) says where the live thumbnail goes, refreshed every
// t.ThumbnailIntervalS (0: DefaultThumbnailInterval).
func PipelineRunner(backend hwprobe.Backend, metrics *pipeline.Metrics, health *HealthReporter, thumbnails ThumbnailsFunc, log *slog.Logger) RunFunc {
	return func(ctx context.Context, t job.Transcode, src job.Source, sink media.Sink) error {
		cfg := pipeline.Config{
			StreamID:        t.StreamID.String(),
			Source:          src,
			Ladder:          t.Ladder,
			Backend:         backend,
			SegmentDuration: time.Duration(t.SegmentDuration * float64(time.Second)),
			Logger:          log.With("session_id", t.SessionID),
			Metrics:         metrics,
		}
		if thumbnails != nil {
			if dir, on := thumbnails(t); dir != "" {
				cfg.ThumbnailInterval, cfg.ThumbnailDir, cfg.OnThumbnail = thumbnailInterval(t), dir, on
			}
		}
		p, err := pipeline.New(cfg)
		if err == nil {
			hctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); health.Run(hctx, t, p.Health) }()
			err = p.Run(ctx, sink)
			stop()
			<-done
		}
		if permanentPipelineError(err) {
			return fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		return err
	}
}

// permanentPipelineError reports pipeline errors that a restart cannot fix.
func permanentPipelineError(err error) bool {
	for _, e := range []error{pipeline.ErrNoVideo, pipeline.ErrUnsupportedCodec, pipeline.ErrUnsupportedScheme, pipeline.ErrBadStream, pipeline.ErrMissingElement} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// asynqLogger adapts slog to asynq.Logger. asynq never calls Fatal on its own;
// it is logged as an error rather than exiting the process.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
