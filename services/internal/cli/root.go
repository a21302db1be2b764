// Package cli is the dionysia command line: one constructor per command group
// (api, migrate, api-key, streams, profiles, workers, edge), wired by NewRoot. Configuration
// comes from flags and DIONYSIA_* environment variables (see package config).
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
)

// Env is the process environment the commands use.
type Env struct {
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	LookupEnv func(string) (string, bool)
}

// OSEnv is the real process environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}
}

// globals are the flags every command has.
type globals struct {
	env       Env
	output    string
	logLevel  string
	logFormat string
}

// NewRoot returns the dionysia command with every subcommand.
func NewRoot(env Env) *cobra.Command {
	if env.LookupEnv == nil {
		env.LookupEnv = func(string) (string, bool) { return "", false }
	}
	g := &globals{env: env}
	root := &cobra.Command{
		Use:           "dionysia",
		Short:         "Dionysia live-streaming platform: management API, CLI and services",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.ApplyEnv(cmd.Flags(), env.LookupEnv); err != nil {
				return err
			}
			if g.output != "table" && g.output != "json" {
				return fmt.Errorf("--output must be table or json, got %q", g.output)
			}
			return nil
		},
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	config.BindEnv(pf, "output", "DIONYSIA_OUTPUT")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	config.BindEnv(pf, "log-level", "DIONYSIA_LOG_LEVEL")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	config.BindEnv(pf, "log-format", "DIONYSIA_LOG_FORMAT")

	root.AddCommand(newAPICmd(g), newMigrateCmd(g), newAPIKeyCmd(g), newStreamsCmd(g), newProfilesCmd(g), newWorkersCmd(g),
		newEdgeCmd(g), newRouterCmd(g))
	return root
}

func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.env.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.env.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, got %q", g.logFormat)
}

func (g *globals) json() bool { return g.output == "json" }

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows aligned in columns under a header.
func (g *globals) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(g.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// openPool connects to PostgreSQL.
func openPool(ctx context.Context, c config.Database) (*pgxpool.Pool, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	pc.MaxConns = int32(c.MaxConns)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	return pool, nil
}
