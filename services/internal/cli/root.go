// Package cli is the dionysia command line: one constructor per command group
// (api, migrate, api-key, streams, profiles, workers, edge), wired by NewRoot. Configuration
// comes from flags and DIONYSIA_* environment variables (package conf applies
// the environment, in the root command, for every command).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/dionysia/dionysia/pkg/conf"
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

// varOutput is the output format of the CLI commands.
var varOutput = conf.Var{Flag: "output", Env: "DIONYSIA_OUTPUT"}

// globals are the flags every command has.
type globals struct {
	env    Env
	output string
	log    conf.Log
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
			// The environment, applied in one place for every command; then
			// the settings every command has are checked.
			if err := conf.ApplyEnv(cmd.Flags(), env.LookupEnv); err != nil {
				return err
			}
			return errors.Join(conf.OneOf(varOutput, g.output, "table", "json"), g.log.Validate())
		},
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.output, varOutput.Flag, "o", "table", "output format: table or json")
	conf.Bind(pf, varOutput)
	g.log.RegisterFlags(pf)

	root.AddCommand(newAPICmd(g), newMigrateCmd(g), newAPIKeyCmd(g), newStreamsCmd(g), newAssetsCmd(g), newProfilesCmd(g), newWorkersCmd(g), newEventsCmd(g),
		newEdgeCmd(g), newRouterCmd(g), newWebhooksCmd(g))
	addEventsRedeliver(g, root)
	return root
}

func (g *globals) logger() (*slog.Logger, error) { return g.log.Logger(g.env.Stderr) }

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
