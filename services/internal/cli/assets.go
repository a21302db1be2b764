package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/spf13/cobra"
)

func newAssetsCmd(g *globals) *cobra.Command {
	var cc config.Client
	cmd := apiCommand("assets", "Manage recorded assets (VOD) through the API", &cc)
	cmd.Aliases = []string{"asset"}

	var streamID string
	list := &cobra.Command{
		Use:   "list [--stream ID]",
		Short: "List every asset, or a stream's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			all, err := c.AllAssets(cmd.Context(), streamID)
			if err != nil {
				return err
			}
			if g.json() {
				if all == nil {
					all = []apiv1.Asset{}
				}
				return g.printJSON(all)
			}
			rows := make([][]string, len(all))
			for i, a := range all {
				rows[i] = []string{a.ID.String(), a.StreamID.String(), a.Status, secondsText(a.DurationS),
					strconv.FormatInt(a.SizeBytes, 10), a.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(a.ReadyAt)}
			}
			return g.table([]string{"ID", "STREAM", "STATUS", "DURATION", "BYTES", "CREATED", "READY"}, rows)
		},
	}
	list.Flags().StringVar(&streamID, "stream", "", "only the assets of this stream (id)")

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show an asset with its playback URLs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			a, err := c.GetAsset(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printAsset(a)
		},
	}

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a ready or failed asset and its objects in the store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			if err := c.DeleteAsset(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(g.env.Stdout, "deleted asset %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, get, del)
	return cmd
}

func secondsText(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) + " s" }

func (g *globals) printAsset(a apiv1.Asset) error {
	if g.json() {
		return g.printJSON(a)
	}
	sessions := make([]string, len(a.SessionIDs))
	for i, id := range a.SessionIDs {
		sessions[i] = id.String()
	}
	rows := [][]string{
		{"id", a.ID.String()}, {"stream", a.StreamID.String()}, {"sessions", strings.Join(sessions, ",")},
		{"status", a.Status}, {"duration", secondsText(a.DurationS)}, {"size", strconv.FormatInt(a.SizeBytes, 10) + " bytes"},
		{"lost", secondsText(a.LostS)},
	}
	if a.FailureReason != nil {
		rows = append(rows, []string{"failure", *a.FailureReason})
	}
	for _, r := range a.Renditions {
		desc := r.Codec
		if !r.Audio {
			desc = fmt.Sprintf("%dx%d %s %d bit/s", r.Width, r.Height, r.Codec, r.Bandwidth)
		}
		rows = append(rows, []string{"rendition " + r.Name, desc})
	}
	if p := a.Playback; p != nil {
		rows = append(rows, []string{"playback hls", p.HLS}, []string{"playback dash", p.DASH}, []string{"playback mp4", p.MP4})
	}
	if a.Thumbnail != "" {
		rows = append(rows, []string{"thumbnail", a.Thumbnail})
	}
	rows = append(rows, []string{"created", a.CreatedAt.UTC().Format(time.RFC3339)}, []string{"ended", timeOrDash(a.EndedAt)},
		[]string{"ready", timeOrDash(a.ReadyAt)}, []string{"delete after", timeOrDash(a.DeleteAfter)})
	return g.table([]string{"FIELD", "VALUE"}, rows)
}
