package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

func apiKeyDoc(k store.APIKey) apiv1.APIKey {
	return apiv1.APIKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scope: k.Scope, CreatedAt: k.CreatedAt,
		LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// newAPIKeyCmd manages API keys directly in the database, so that the first
// key can be made before any exists.
func newAPIKeyCmd(g *globals) *cobra.Command {
	var db config.Database
	cmd := &cobra.Command{
		Use:     "api-key",
		Aliases: []string{"api-keys"},
		Short:   "Create, list and revoke API keys (talks to the database directly)",
	}
	db.RegisterFlags(cmd.PersistentFlags())

	withStore := func(cmd *cobra.Command, fn func(st *store.Store) error) error {
		pool, err := openPool(cmd.Context(), db)
		if err != nil {
			return err
		}
		defer pool.Close()
		return fn(store.New(pool))
	}

	var name, scope string
	create := &cobra.Command{
		Use:   "create --name NAME [--scope admin|read]",
		Short: "Create an API key and print it (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" || len(name) > 100 {
				return fmt.Errorf("--name is required (1-100 characters)")
			}
			if scope != store.ScopeAdmin && scope != store.ScopeRead {
				return fmt.Errorf("--scope must be admin or read, got %q", scope)
			}
			return withStore(cmd, func(st *store.Store) error {
				k, secret, err := st.CreateAPIKey(cmd.Context(), name, scope)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(apiv1.APIKeyCreated{APIKey: apiKeyDoc(k), Secret: secret})
				}
				fmt.Fprintf(g.env.Stderr, "Created api key %q (id %s, scope %s). It is shown only once:\n", k.Name, k.ID, k.Scope)
				fmt.Fprintln(g.env.Stdout, secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "name of the key (who or what uses it)")
	create.Flags().StringVar(&scope, "scope", store.ScopeAdmin, "admin (everything) or read (GET requests only)")
	_ = create.MarkFlagRequired("name")
	_ = create.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{store.ScopeAdmin, store.ScopeRead}, cobra.ShellCompDirectiveNoFileComp))

	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(st *store.Store) error {
				var all []store.APIKey
				page := store.Page{Limit: 200}
				for {
					keys, next, err := st.ListAPIKeys(cmd.Context(), page)
					if err != nil {
						return err
					}
					all = append(all, keys...)
					if next == nil {
						break
					}
					page.After = next
				}
				if g.json() {
					out := make([]apiv1.APIKey, len(all))
					for i, k := range all {
						out[i] = apiKeyDoc(k)
					}
					return g.printJSON(out)
				}
				rows := make([][]string, len(all))
				for i, k := range all {
					rows[i] = []string{k.ID.String(), k.Name, "dio_" + k.Prefix + "_…", k.Scope, fmtTime(&k.CreatedAt), fmtTime(k.LastUsedAt), fmtTime(k.RevokedAt)}
				}
				return g.table([]string{"ID", "NAME", "KEY", "SCOPE", "CREATED", "LAST USED", "REVOKED"}, rows)
			})
		},
	}

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := uuid.Parse(args[0])
			if err != nil {
				return fmt.Errorf("%q is not an api key id", args[0])
			}
			return withStore(cmd, func(st *store.Store) error {
				k, err := st.RevokeAPIKey(cmd.Context(), id)
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(apiKeyDoc(k))
				}
				fmt.Fprintf(g.env.Stdout, "revoked api key %s (%s)\n", k.ID, k.Name)
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
