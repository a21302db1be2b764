// Command dionysia-worker runs live transcodes: it takes stream:transcode tasks
// from the queues of its hardware class, transcodes each stream into its ABR
// ladder with GStreamer, packages CMAF for HLS and DASH, and serves the result
// as an origin for the routing tier.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/dionysia/dionysia/workers/internal/worker"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var cfg worker.Config
	var logFormat, logLevel string
	cmd := &cobra.Command{
		Use:           "dionysia-worker",
		Short:         "Run a Dionysia transcoding worker",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return worker.Run(ctx, cfg, log, version)
		},
	}
	cfg.BindFlags(cmd.Flags())
	cmd.Flags().StringVar(&logFormat, "log-format", envOr("DIONYSIA_LOG_FORMAT", "text"), "log format: text or json (DIONYSIA_LOG_FORMAT)")
	cmd.Flags().StringVar(&logLevel, "log-level", envOr("DIONYSIA_LOG_LEVEL", "info"), "log level: debug, info, warn, error (DIONYSIA_LOG_LEVEL)")
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "dionysia-worker:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("log format must be text or json, got %q", format)
	}
}
