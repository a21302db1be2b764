package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/spf13/cobra"
)

func newWorkersCmd(g *globals) *cobra.Command {
	var cc config.Client
	cmd := apiCommand("workers", "Show the transcoding worker fleet through the API", &cc)
	cmd.Aliases = []string{"worker"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the workers seen in the last minutes with their state and load",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			ws, err := c.ListWorkers(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if ws == nil {
					ws = []apiv1.Worker{}
				}
				return g.printJSON(ws)
			}
			rows := make([][]string, len(ws))
			for i, w := range ws {
				encoders := strings.Join(w.Encoders, ",")
				if encoders == "" {
					encoders = "-"
				}
				rows[i] = []string{w.ID, w.Host, w.Class, w.State, fmt.Sprintf("%d/%d", w.Load, w.Capacity), encoders,
					w.Version, w.LastSeen.UTC().Format(time.RFC3339)}
			}
			return g.table([]string{"ID", "HOST", "CLASS", "STATE", "LOAD/CAPACITY", "ENCODERS", "VERSION", "LAST SEEN"}, rows)
		},
	}
	cmd.AddCommand(list)
	return cmd
}
