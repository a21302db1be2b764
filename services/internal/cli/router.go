package cli

import (
	"net/http"

	"github.com/dionysia/dionysia/services/internal/preview"
	"github.com/dionysia/dionysia/services/internal/router"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
)

func newRouterCmd(g *globals) *cobra.Command {
	s := router.DefaultSettings()
	// The environment provides the flag defaults; flags on the command line win.
	envErr := s.ApplyEnv(g.env.LookupEnv)
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run the routing tier that sends CDN origin requests to the worker holding each stream",
		Long: `Run the router: GET|HEAD /live/{stream_id}/{path...} is proxied (or redirected)
to the worker that owns the stream, looked up in Redis and cached for about a
second. Signed streams need a playback token (DIONYSIA_PLAYBACK_KEYS). The
preview page, /play/{stream_id}, plays a stream with hls.js or dash.js.
See docs/routing.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg, rdb, err := s.Config(log, reg)
			if err != nil {
				return err
			}
			defer rdb.Close()
			cfg.Pages = map[string]http.Handler{preview.Prefix: preview.New(log)}
			rt, err := router.New(cfg)
			if err != nil {
				return err
			}
			return rt.Serve(cmd.Context(), s.Addr)
		},
	}
	s.BindFlags(cmd.Flags())
	return cmd
}
