package cli

import (
	"github.com/dionysia/dionysia/services/internal/edge"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
)

func newEdgeCmd(g *globals) *cobra.Command {
	var cfg edge.Config
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run the ingest edge (mediamtx, supervised) that publishers connect to",
		Long: `Run the ingest edge. It starts the pinned mediamtx as a child process with a
generated configuration, asks the API whether each publisher and reader may
connect, and reports streams going live and stopping. The edge<->API secret is
read from DIONYSIA_EDGE_SECRET only. See docs/edge.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.LoadSecrets(g.env.LookupEnv)
			cfg = cfg.WithDefaults()
			if err := cfg.Validate(); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			// The edge is wired in edge.New and edge.Run: its listeners,
			// the supervised mediamtx and the tracker, started and stopped
			// in order.
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			e, err := edge.New(cfg, log, reg)
			if err != nil {
				return err
			}
			return e.Run(cmd.Context())
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}
