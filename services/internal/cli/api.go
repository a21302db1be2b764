package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/migrate"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// apiSettings are the settings of `dionysia api`.
type apiSettings struct {
	API      config.API
	Database config.Database
	Redis    conf.Redis
	Storage  conf.Storage // the object store of recordings
}

func (s *apiSettings) registerFlags(fs *pflag.FlagSet) {
	s.API.RegisterFlags(fs)
	s.Database.RegisterFlags(fs)
	s.Redis.RegisterFlags(fs)
	s.Storage.RegisterFlags(fs)
}

// validate completes the settings with their defaults and the secrets, and
// checks them all before anything is opened.
func (s *apiSettings) validate(lookup func(string) (string, bool)) error {
	s.API.LoadSecrets(lookup)
	s.Storage.LoadSecrets(lookup)
	s.API = s.API.WithDefaults()
	s.Database = s.Database.WithDefaults()
	s.Redis = s.Redis.WithDefaults()
	s.Storage = s.Storage.WithDefaults()
	return errors.Join(s.API.Validate(), s.Database.Validate(), s.Redis.Validate(), s.Storage.Validate())
}

func newAPICmd(g *globals) *cobra.Command {
	var s apiSettings
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Run the management API server (and the dispatch watchdog)",
		Long: `Run the management API server. It also serves the internal endpoints of the
ingest edges and the workers, enqueues a transcode task for every stream that
goes live, and runs the failover watchdog that re-dispatches a stream whose
worker is gone. Secrets come from the environment only: DIONYSIA_EDGE_SECRET,
DIONYSIA_WORKER_SECRET, DIONYSIA_PLAYBACK_KEYS (see docs/configuration.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.validate(g.env.LookupEnv); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			return runAPI(cmd.Context(), s, log)
		},
	}
	s.registerFlags(cmd.Flags())
	return cmd
}

// runAPI is `dionysia api`: it opens the connections, has api.NewApp
// construct the components, listens, and runs them until ctx is cancelled;
// the deferred calls close the connections after the components stopped.
func runAPI(ctx context.Context, s apiSettings, log *slog.Logger) error {
	pool, err := openPool(ctx, s.Database)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := requireSchema(ctx, pool); err != nil {
		return err
	}

	ropts, err := s.Redis.Options()
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()

	// The object store of recordings. One that does not answer yet is
	// reported, not fatal: live streaming does not need it, and builds and
	// deletions retry.
	objects, err := storage.Open(ctx, s.Storage.URL, storage.Options{AccessKeyID: s.Storage.AccessKeyID,
		SecretAccessKey: s.Storage.SecretAccessKey})
	if err != nil {
		return fmt.Errorf("opening the object store %s: %w", storage.Redact(s.Storage.URL), err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := objects.Ping(pingCtx); err != nil {
		log.Warn("the object store of recordings does not answer; recordings cannot be built or deleted until it does",
			"store", objects.String(), "err", err)
	}
	cancel()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	app, err := api.NewApp(s.API, api.Deps{Store: store.New(pool), Pool: pool, Redis: rdb, RedisPrefix: s.Redis.Prefix,
		Objects: objects, Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.API.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.API.Addr, err)
	}
	return app.Run(ctx, ln)
}

// requireSchema refuses to serve a schema this binary does not know yet.
func requireSchema(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	m, err := migrate.New(sqlDB, migrate.Config{})
	if err != nil {
		return err
	}
	cur, latest, err := m.Version(ctx)
	if err != nil {
		return err
	}
	if cur < latest {
		return fmt.Errorf("the database schema is at version %d, this binary needs %d: run `dionysia migrate up`", cur, latest)
	}
	return nil
}
