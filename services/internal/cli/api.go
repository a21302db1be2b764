package cli

import (
	"fmt"
	"net"

	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/migrate"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

func newAPICmd(g *globals) *cobra.Command {
	var (
		cfg config.API
		db  config.Database
		rc  config.Redis
	)
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
			ctx := cmd.Context()
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg.LoadSecrets(g.env.LookupEnv)
			rc = rc.WithDefaults()
			if err := rc.Validate(); err != nil {
				return err
			}
			pool, err := openPool(ctx, db)
			if err != nil {
				return err
			}
			defer pool.Close()

			// Refuse to serve a schema this binary does not know yet.
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

			ropts, err := redis.ParseURL(rc.URL)
			if err != nil {
				return fmt.Errorf("parsing redis url: %w", err)
			}
			rdb := redis.NewClient(ropts)
			defer rdb.Close()

			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			srv, err := api.New(cfg, api.Deps{Store: store.New(pool), Pool: pool, Redis: rdb, Registry: reg, Logger: log})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.WithDefaults().Addr)
			if err != nil {
				return fmt.Errorf("listening: %w", err)
			}
			return srv.Run(ctx, ln)
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	db.RegisterFlags(cmd.Flags())
	rc.RegisterFlags(cmd.Flags())
	return cmd
}
