package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/spf13/cobra"
)

func renditionNames(p apiv1.Profile) string {
	names := make([]string, len(p.Renditions))
	for i, r := range p.Renditions {
		names[i] = r.Name
	}
	return strings.Join(names, ",")
}

func (g *globals) printProfile(p apiv1.Profile) error {
	if g.json() {
		return g.printJSON(p)
	}
	fmt.Fprintf(g.env.Stdout, "id:          %s\nname:        %s\nbuiltin:     %t\ndescription: %s\naudio:       %s %d kbps, %d ch, %d Hz\n\n",
		p.ID, p.Name, p.Builtin, p.Description, p.Audio.Codec, p.Audio.BitrateKbps, p.Audio.Channels, p.Audio.SampleRate)
	rows := make([][]string, len(p.Renditions))
	for i, r := range p.Renditions {
		size := fmt.Sprintf("%dx%d", r.Width, r.Height)
		if r.Width == 0 && r.Height == 0 {
			size = "source"
		}
		fps := strconv.FormatFloat(r.FrameRate, 'f', -1, 64)
		if r.FrameRate == 0 {
			fps = "source"
		}
		rows[i] = []string{r.Name, size, strconv.Itoa(r.VideoBitrateKbps), strconv.Itoa(r.MaxBitrateKbps), fps, r.Codec, r.Preset,
			strconv.FormatFloat(r.KeyframeInterval, 'f', -1, 64)}
	}
	return g.table([]string{"RENDITION", "SIZE", "KBPS", "MAX KBPS", "FPS", "CODEC", "PRESET", "GOP S"}, rows)
}

func newProfilesCmd(g *globals) *cobra.Command {
	var cc config.Client
	cmd := apiCommand("profiles", "Manage ABR ladder profiles through the API", &cc)
	cmd.Aliases = []string{"profile"}

	list := &cobra.Command{
		Use:   "list",
		Short: "List every profile",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			all, err := c.AllProfiles(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(all)
			}
			rows := make([][]string, len(all))
			for i, p := range all {
				rows[i] = []string{p.ID.String(), p.Name, strconv.FormatBool(p.Builtin), renditionNames(p), p.Description}
			}
			return g.table([]string{"ID", "NAME", "BUILTIN", "RENDITIONS", "DESCRIPTION"}, rows)
		},
	}

	get := &cobra.Command{
		Use:   "get ID|NAME",
		Short: "Show a profile and its renditions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			p, err := c.GetProfile(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printProfile(p)
		},
	}

	var name, file, description string
	create := &cobra.Command{
		Use:   "create --name NAME --file LADDER.json",
		Short: "Create a profile from a ladder file ({\"renditions\": [...], \"audio\": {...}}; - reads stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(io.LimitReader(g.env.Stdin, 1<<20))
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("reading the ladder file: %w", err)
			}
			var req apiv1.ProfileCreate
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return fmt.Errorf("reading the ladder file %s: %w", file, err)
			}
			if cmd.Flags().Changed("name") || req.Name == "" {
				req.Name = name
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			p, err := c.CreateProfile(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.printProfile(p)
		},
	}
	create.Flags().StringVar(&name, "name", "", "profile name (overrides the file's)")
	create.Flags().StringVarP(&file, "file", "f", "", "ladder JSON file, or - for stdin")
	create.Flags().StringVar(&description, "description", "", "what the profile is for")
	_ = create.MarkFlagRequired("file")
	_ = create.MarkFlagFilename("file", "json")

	del := &cobra.Command{
		Use:   "delete ID|NAME",
		Short: "Delete a custom profile that no stream uses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			if err := c.DeleteProfile(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(g.env.Stdout, "deleted profile %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, get, create, del)
	return cmd
}
