package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/conf"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/client"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// webhookFlags are the settable fields of a webhook, shared by create and
// update.
type webhookFlags struct {
	url, description, streamID string
	eventTypes                 []string
	enabled                    bool
}

func (f *webhookFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "http(s) URL the events are POSTed to")
	fs.StringVar(&f.description, "description", "", "what the endpoint is for")
	fs.StringSliceVar(&f.eventTypes, "event-types", nil, `event types or "prefix.*" patterns, comma-separated (default: every event; docs/events.md)`)
	fs.StringVar(&f.streamID, "stream", "", `only this stream's events (a stream id; "" on update: every stream)`)
	fs.BoolVar(&f.enabled, "enabled", true, "deliver to the endpoint (--enabled=false pauses it)")
}

var webhookFieldFlags = []string{"url", "description", "event-types", "stream", "enabled"}

func parseStreamID(s string) (*uuid.UUID, error) {
	if s == "" {
		return nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--stream must be a stream id (a UUID), got %q", s)
	}
	return &id, nil
}

func (f *webhookFlags) update(fs *pflag.FlagSet) (apiv1.WebhookUpdate, error) {
	var u apiv1.WebhookUpdate
	if fs.Changed("url") {
		u.URL = &f.url
	}
	if fs.Changed("description") {
		u.Description = &f.description
	}
	if fs.Changed("event-types") {
		types := append([]string{}, f.eventTypes...)
		u.EventTypes = &types
	}
	if fs.Changed("stream") {
		id, err := parseStreamID(f.streamID)
		if err != nil {
			return u, err
		}
		u.StreamID = apiv1.OptionalID{Set: true, ID: id}
	}
	if fs.Changed("enabled") {
		u.Enabled = &f.enabled
	}
	return u, nil
}

func (g *globals) printWebhook(w apiv1.Webhook) error {
	if g.json() {
		return g.printJSON(w)
	}
	stream := "all"
	if w.StreamID != nil {
		stream = w.StreamID.String()
	}
	types := "all"
	if len(w.EventTypes) > 0 {
		types = strings.Join(w.EventTypes, ",")
	}
	return g.table([]string{"FIELD", "VALUE"}, [][]string{
		{"id", w.ID.String()}, {"url", w.URL}, {"description", orDash(&w.Description)}, {"event types", types},
		{"stream", stream}, {"enabled", strconv.FormatBool(w.Enabled)},
		{"consecutive failures", strconv.Itoa(w.ConsecutiveFailures)}, {"disabled reason", orDash(w.DisabledReason)},
		{"previous secret until", timeOrDash(w.PreviousSecretExpiresAt)},
		{"created", w.CreatedAt.UTC().Format(time.RFC3339)}, {"updated", w.UpdatedAt.UTC().Format(time.RFC3339)},
	})
}

// printSecret prints a webhook with its secret, shown only this once.
func (g *globals) printSecret(w apiv1.WebhookWithSecret, what string) error {
	if g.json() {
		return g.printJSON(w)
	}
	if err := g.printWebhook(w.Webhook); err != nil {
		return err
	}
	fmt.Fprintf(g.env.Stderr, "\n%s. The signing secret is shown only this once: keep it (receivers verify Dionysia-Signature with it):\n", what)
	fmt.Fprintln(g.env.Stdout, w.Secret)
	return nil
}

func newWebhooksCmd(g *globals) *cobra.Command {
	var cc config.Client
	cmd := apiCommand("webhooks", "Manage webhook endpoints through the API (docs/webhooks.md)", &cc)
	cmd.Aliases = []string{"webhook"}
	withClient := func(fn func(c *client.Client) error) error {
		c, err := newClient(cc)
		if err != nil {
			return err
		}
		return fn(c)
	}

	var cf webhookFlags
	create := &cobra.Command{
		Use:   "create --url URL [flags]",
		Short: "Create a webhook endpoint and print its signing secret (shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := parseStreamID(cf.streamID)
			if err != nil {
				return err
			}
			return withClient(func(c *client.Client) error {
				w, err := c.CreateWebhook(cmd.Context(), apiv1.WebhookCreate{URL: cf.url, Description: cf.description,
					EventTypes: cf.eventTypes, StreamID: id, Enabled: &cf.enabled})
				if err != nil {
					return err
				}
				return g.printSecret(w, "Created webhook "+w.ID.String())
			})
		},
	}
	cf.register(create.Flags())
	_ = create.MarkFlagRequired("url")

	list := &cobra.Command{
		Use:   "list",
		Short: "List every webhook endpoint (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(func(c *client.Client) error {
				all, err := c.AllWebhooks(cmd.Context())
				if err != nil {
					return err
				}
				if g.json() {
					if all == nil {
						all = []apiv1.Webhook{}
					}
					return g.printJSON(all)
				}
				rows := make([][]string, len(all))
				for i, w := range all {
					types := "all"
					if len(w.EventTypes) > 0 {
						types = strings.Join(w.EventTypes, ",")
					}
					rows[i] = []string{w.ID.String(), w.URL, types, strconv.FormatBool(w.Enabled), strconv.Itoa(w.ConsecutiveFailures),
						w.CreatedAt.UTC().Format(time.RFC3339)}
				}
				return g.table([]string{"ID", "URL", "EVENT TYPES", "ENABLED", "FAILURES", "CREATED"}, rows)
			})
		},
	}

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a webhook endpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(func(c *client.Client) error {
				w, err := c.GetWebhook(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return g.printWebhook(w)
			})
		},
	}

	var uf webhookFlags
	update := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change the given fields of a webhook endpoint (--enabled re-enables one the platform disabled)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !anyChanged(cmd.Flags(), webhookFieldFlags) {
				return fmt.Errorf("nothing to update: give at least one of the flags")
			}
			u, err := uf.update(cmd.Flags())
			if err != nil {
				return err
			}
			return withClient(func(c *client.Client) error {
				w, err := c.UpdateWebhook(cmd.Context(), args[0], u)
				if err != nil {
					return err
				}
				return g.printWebhook(w)
			})
		},
	}
	uf.register(update.Flags())

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a webhook endpoint and its deliveries",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(func(c *client.Client) error {
				if err := c.DeleteWebhook(cmd.Context(), args[0]); err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]string{"deleted": args[0]})
				}
				fmt.Fprintf(g.env.Stdout, "deleted webhook %s\n", args[0])
				return nil
			})
		},
	}

	var grace time.Duration
	rotate := &cobra.Command{
		Use:   "rotate-secret ID [--grace 24h]",
		Short: "Give a webhook endpoint a new signing secret; the old one still signs during the grace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req *apiv1.WebhookRotateSecret
			if cmd.Flags().Changed("grace") {
				if grace < 0 {
					return fmt.Errorf("--grace must not be negative, got %s", grace)
				}
				secs := int(grace.Seconds())
				req = &apiv1.WebhookRotateSecret{GraceSeconds: &secs}
			}
			return withClient(func(c *client.Client) error {
				w, err := c.RotateWebhookSecret(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				what := "Rotated the secret of webhook " + w.ID.String()
				if w.PreviousSecretExpiresAt != nil {
					what += "; the old secret still signs until " + w.PreviousSecretExpiresAt.UTC().Format(time.RFC3339)
				}
				return g.printSecret(w, what)
			})
		},
	}
	rotate.Flags().DurationVar(&grace, "grace", 0, "how long the old secret still signs (default: the API's DIONYSIA_WEBHOOK_ROTATION_GRACE, 24h; 0 ends it now)")

	test := &cobra.Command{
		Use:   "test ID",
		Short: "Send a webhook.test event to the endpoint (see it with `webhooks deliveries ID`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(func(c *client.Client) error {
				s, err := c.TestWebhook(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(s)
				}
				fmt.Fprintf(g.env.Stdout, "queued webhook.test event %s\n", s.EventID)
				return nil
			})
		},
	}

	var limit int
	deliveries := &cobra.Command{
		Use:   "deliveries ID [--limit N]",
		Short: "List an endpoint's latest deliveries with their attempts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(func(c *client.Client) error {
				page, err := c.WebhookDeliveries(cmd.Context(), args[0], client.ListOptions{Limit: limit})
				if err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(page.Data)
				}
				var rows [][]string
				for _, d := range page.Data {
					code := "-"
					if d.LastStatusCode != nil {
						code = strconv.Itoa(*d.LastStatusCode)
					}
					rows = append(rows, []string{d.EventID.String(), d.EventType, d.Status, strconv.Itoa(d.Attempts), code,
						timeOrDash(d.NextAttemptAt), orDash(d.LastError)})
				}
				return g.table([]string{"EVENT", "TYPE", "STATUS", "ATTEMPTS", "LAST CODE", "NEXT ATTEMPT", "LAST ERROR"}, rows)
			})
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 20, "deliveries to show (1-200), newest first")

	cmd.AddCommand(create, list, get, update, del, rotate, test, deliveries)
	return cmd
}

// addEventsRedeliver adds `events redeliver ID` to the root's events
// command, creating that command group when the binary has none. It reads
// the API's URL and key from the group's inherited flags (which the
// environment has set), so it fits any events group that registers the
// client flags.
func addEventsRedeliver(g *globals, root *cobra.Command) {
	var events *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "events" {
			events = c
		}
	}
	if events == nil {
		var cc config.Client
		events = apiCommand("events", "Work with the event log through the API", &cc)
		root.AddCommand(events)
	}
	redeliver := &cobra.Command{
		Use:   "redeliver EVENT_ID",
		Short: "Deliver an event again to every matching enabled webhook endpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			cc := config.Client{}
			cc.APIURL, _ = fs.GetString(conf.APIURL.Flag)
			cc.APIKey, _ = fs.GetString(config.VarAPIKey.Flag)
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			r, err := c.RedeliverEvent(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(r)
			}
			fmt.Fprintf(g.env.Stdout, "event %s queued again to %d webhook endpoint(s)\n", r.EventID, len(r.WebhookIDs))
			return nil
		},
	}
	events.AddCommand(redeliver)
}
