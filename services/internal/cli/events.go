package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/client"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/spf13/cobra"
)

// eventHeader is the columns of `events list` and `events get`.
var eventHeader = []string{"ID", "CREATED", "TYPE", "STREAM", "DETAIL"}

func newEventsCmd(g *globals) *cobra.Command {
	var cc config.Client
	cmd := apiCommand("events", "Read and follow the event log through the API", &cc)
	cmd.Aliases = []string{"event"}

	var (
		f        client.EventFilter
		limit    int
		follow   bool
		interval time.Duration
	)
	list := &cobra.Command{
		Use:   "list [--type PREFIX] [--stream ID] [--limit N] [-f]",
		Short: "List events, newest first; with -f, the latest oldest first, then each new one as it is recorded until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			page, err := c.ListEvents(cmd.Context(), f, client.ListOptions{Limit: limit})
			if err != nil {
				return err
			}
			if !follow {
				if g.json() {
					return g.printJSON(page.Data)
				}
				return g.table(eventHeader, eventRows(page.Data))
			}
			if interval <= 0 {
				return errors.New("--interval: must be positive")
			}
			return g.followEvents(cmd.Context(), c, f, page.Data, interval)
		},
	}
	fs := list.Flags()
	fs.StringVar(&f.Type, "type", "", "only events whose type starts with this, e.g. session. or stream.live")
	fs.StringVar(&f.StreamID, "stream", "", "only the events of this stream (id)")
	fs.IntVar(&limit, "limit", 50, "how many events to show (1-200); with -f, how many of the latest to show first")
	fs.BoolVarP(&follow, "follow", "f", false, "keep printing new events as they are recorded, until interrupted")
	fs.DurationVar(&interval, "interval", time.Second, "with -f, how often to ask the API for new events")

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one event with its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			e, err := c.GetEvent(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(e)
			}
			if err := g.table(eventHeader, eventRows([]apiv1.Event{e})); err != nil {
				return err
			}
			var data any
			if err := json.Unmarshal(e.Data, &data); err != nil {
				return fmt.Errorf("decoding the data of event %s: %w", e.ID, err)
			}
			fmt.Fprintln(g.env.Stdout)
			return g.printJSON(data)
		},
	}
	cmd.AddCommand(list, get)
	return cmd
}

// followEvents prints latest (newest first, as listed) oldest first, then
// polls for newer events every interval and prints each, until ctx ends
// (Ctrl-C), which is not an error. Table output is one aligned line per
// event; JSON output one object per line (JSON Lines).
func (g *globals) followEvents(ctx context.Context, c *client.Client, f client.EventFilter, latest []apiv1.Event, interval time.Duration) error {
	if !g.json() {
		g.eventLine(eventHeader)
	}
	var last string
	emit := func(events []apiv1.Event) error {
		for _, e := range events {
			if g.json() {
				line, err := json.Marshal(e)
				if err != nil {
					return err
				}
				fmt.Fprintln(g.env.Stdout, string(line))
			} else {
				g.eventLine(eventRows([]apiv1.Event{e})[0])
			}
			last = e.ID.String()
		}
		return nil
	}
	for i := len(latest) - 1; i >= 0; i-- {
		if err := emit(latest[i : i+1]); err != nil {
			return err
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var (
			events []apiv1.Event
			err    error
		)
		if last == "" {
			// Nothing seen yet: the newest events, until there is one.
			var page apiv1.List[apiv1.Event]
			page, err = c.ListEvents(ctx, f, client.ListOptions{Limit: 200})
			for i := len(page.Data) - 1; i >= 0; i-- {
				events = append(events, page.Data[i])
			}
		} else {
			events, err = c.EventsAfter(ctx, f, last, 200)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := emit(events); err != nil {
			return err
		}
	}
}

// eventLine prints one row of a followed table, in fixed-width columns.
func (g *globals) eventLine(cols []string) {
	fmt.Fprintf(g.env.Stdout, "%-36s  %-20s  %-19s  %-36s  %s\n", cols[0], cols[1], cols[2], cols[3], cols[4])
}

func eventRows(events []apiv1.Event) [][]string {
	rows := make([][]string, len(events))
	for i, e := range events {
		stream := "-"
		if e.StreamID != nil {
			stream = e.StreamID.String()
		}
		rows[i] = []string{e.ID.String(), e.CreatedAt.UTC().Format(time.RFC3339), e.Type, stream, eventDetail(e)}
	}
	return rows
}

// eventDetail summarises an event's data in a few words.
func eventDetail(e apiv1.Event) string {
	var d struct {
		ID          string     `json:"id"`
		Status      string     `json:"status"`
		State       string     `json:"state"`
		Name        string     `json:"name"`
		WorkerID    *string    `json:"worker_id"`
		EndReason   *string    `json:"end_reason"`
		Reason      string     `json:"reason"`
		ResumeUntil *time.Time `json:"resume_until"`
		FromWorker  string     `json:"from_worker"`
		ToWorker    string     `json:"to_worker"`
		GapMs       *int64     `json:"gap_ms"`
		SessionID   string     `json:"session_id"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return "-"
	}
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	switch {
	case strings.HasPrefix(e.Type, "worker."):
		add("worker", d.ID)
		add("state", d.State)
	case e.Type == "stream.failover":
		add("session", d.SessionID)
		add("from", d.FromWorker)
		add("to", d.ToWorker)
		if d.GapMs != nil {
			add("gap", (time.Duration(*d.GapMs) * time.Millisecond).String())
		}
	case strings.HasPrefix(e.Type, "stream."):
		add("name", d.Name)
		add("status", d.Status)
		if d.ResumeUntil != nil {
			add("resume_until", d.ResumeUntil.UTC().Format(time.RFC3339))
		}
	default:
		add("session", d.ID)
		add("status", d.Status)
		add("end_reason", deref(d.EndReason))
		add("worker", deref(d.WorkerID))
		add("reason", d.Reason)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
