package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/migrate"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/spf13/cobra"
)

func newMigrateCmd(g *globals) *cobra.Command {
	var db config.Database
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or list the database schema migrations",
	}
	db.RegisterFlags(cmd.PersistentFlags())

	// with opens the database and a migrator for the duration of fn.
	with := func(cmd *cobra.Command, fn func(m *migrate.Migrator) error) error {
		pool, err := openPool(cmd.Context(), db)
		if err != nil {
			return err
		}
		defer pool.Close()
		sqlDB := stdlib.OpenDBFromPool(pool)
		defer sqlDB.Close()
		m, err := migrate.New(sqlDB, migrate.Config{})
		if err != nil {
			return err
		}
		return fn(m)
	}

	up := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration (safe to run concurrently)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return with(cmd, func(m *migrate.Migrator) error {
				rs, err := m.Up(cmd.Context())
				for _, r := range rs {
					fmt.Fprintf(g.env.Stdout, "applied %s (%s)\n", r.Name, r.Duration.Round(time.Millisecond))
				}
				if err != nil {
					return err
				}
				cur, _, err := m.Version(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(g.env.Stdout, "schema is at version %d\n", cur)
				return nil
			})
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Roll back the most recent migration (one step)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return with(cmd, func(m *migrate.Migrator) error {
				r, err := m.Down(cmd.Context())
				if errors.Is(err, migrate.ErrNothingToRollBack) {
					fmt.Fprintln(g.env.Stdout, "no migration is applied")
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(g.env.Stdout, "rolled back %s (%s)\n", r.Name, r.Duration.Round(time.Millisecond))
				return nil
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "List the migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return with(cmd, func(m *migrate.Migrator) error {
				ss, err := m.Status(cmd.Context())
				if err != nil {
					return err
				}
				if g.json() {
					type row struct {
						Version   int64      `json:"version"`
						Name      string     `json:"name"`
						Applied   bool       `json:"applied"`
						AppliedAt *time.Time `json:"applied_at"`
					}
					out := make([]row, len(ss))
					for i, s := range ss {
						out[i] = row{Version: s.Version, Name: s.Name, Applied: s.Applied}
						if s.Applied {
							out[i].AppliedAt = &ss[i].AppliedAt
						}
					}
					return g.printJSON(out)
				}
				rows := make([][]string, len(ss))
				for i, s := range ss {
					at := "pending"
					if s.Applied {
						at = s.AppliedAt.UTC().Format(time.RFC3339)
					}
					rows[i] = []string{fmt.Sprint(s.Version), s.Name, at}
				}
				return g.table([]string{"VERSION", "NAME", "APPLIED AT"}, rows)
			})
		},
	}
	cmd.AddCommand(up, down, status)
	return cmd
}
