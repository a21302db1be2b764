// Command dionysia-worker runs live transcodes: it takes stream:transcode tasks
// from the queues of its hardware class, transcodes each stream into its ABR
// ladder with GStreamer, packages CMAF for HLS and DASH, and serves the result
// as an origin for the routing tier.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/workers/internal/worker"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newCommand(os.LookupEnv, os.Stderr, worker.Run).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dionysia-worker:", err)
		os.Exit(1)
	}
}

// runFunc runs the worker; worker.Run in production.
type runFunc func(ctx context.Context, cfg worker.Config, log *slog.Logger, version string) error

// newCommand returns the dionysia-worker command: its flags, the
// environment (lookup) applied to the flags the command line left unset,
// the secret, and every setting checked before run is called.
func newCommand(lookup func(string) (string, bool), stderr io.Writer, run runFunc) *cobra.Command {
	var (
		cfg worker.Config
		lc  conf.Log
	)
	cmd := &cobra.Command{
		Use:           "dionysia-worker",
		Short:         "Run a Dionysia transcoding worker",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := conf.ApplyEnv(cmd.Flags(), lookup); err != nil {
				return err
			}
			cfg.LoadSecrets(lookup)
			cfg = cfg.WithDefaults()
			if err := errors.Join(cfg.Validate(), lc.WithDefaults().Validate()); err != nil {
				return err
			}
			log, err := lc.Logger(stderr)
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg, log, version)
		},
	}
	cmd.SetErr(stderr)
	cfg.RegisterFlags(cmd.Flags())
	lc.RegisterFlags(cmd.Flags())
	return cmd
}
