package cli

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/services/internal/preview"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
)

func newRouterCmd(g *globals) *cobra.Command {
	var s router.Settings
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run the routing tier that sends CDN origin requests to the worker holding each stream",
		Long: `Run the router: GET|HEAD /live/{stream_id}/{path...} is proxied (or redirected)
to the worker that owns the stream, looked up in Redis and cached for about a
second. Signed streams need a playback token (DIONYSIA_PLAYBACK_KEYS).
GET|HEAD /vod/{asset_id}/{path...} serves a recorded asset from the recordings
store (DIONYSIA_STORAGE_URL; needs DIONYSIA_WORKER_SECRET to ask the API about
assets). The preview page, /play/{stream_id} and /play/vod/{asset_id}, plays
with hls.js or dash.js. See docs/routing.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s.LoadSecrets(g.env.LookupEnv)
			s = s.WithDefaults()
			if err := s.Validate(); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			return runRouter(cmd.Context(), s, log)
		},
	}
	s.RegisterFlags(cmd.Flags())
	return cmd
}

// runRouter is `dionysia router`: the Redis client, the router with its
// preview page, served (with the ownership watch alongside) until ctx is
// cancelled; the Redis client is closed after the router stopped.
func runRouter(ctx context.Context, s router.Settings, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg, rdb, err := s.Config(log, reg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if cfg.Store, err = s.OpenStore(ctx); err != nil {
		return err
	}
	if cfg.Store == nil {
		log.Warn(conf.WorkerSecret.Env + " is not set: VOD playback (/vod/) answers 503")
	} else {
		log.Info("VOD playback on", "store", cfg.Store.String(), "api_url", s.APIURL)
	}
	cfg.Pages = map[string]http.Handler{preview.Prefix: preview.New(log)}
	rt, err := router.New(cfg)
	if err != nil {
		return err
	}
	return rt.Serve(ctx, s.Addr)
}
