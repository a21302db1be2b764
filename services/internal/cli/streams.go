package cli

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/client"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// apiCommand builds a command group whose subcommands call the API.
func apiCommand(use, short string, c *config.Client) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	c.RegisterFlags(cmd.PersistentFlags())
	return cmd
}

// newClient validates the client configuration and returns a client.
func newClient(c config.Client) (*client.Client, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return client.New(c.APIURL, c.APIKey, nil), nil
}

// streamFlags are the settable fields of a stream, shared by create and update.
type streamFlags struct {
	name, profile, hardware, policy string
	outputs                         []string
	segment, window                 int
	disabled                        bool
	record                          string
	deleteAfterDays, dvrWindow      int
	thumbInterval                   float64
}

func (f *streamFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "stream name")
	fs.StringVar(&f.profile, "profile", "", "profile name or id (default 720p)")
	fs.StringSliceVar(&f.outputs, "outputs", nil, "outputs: hls, dash or both (default both)")
	fs.StringVar(&f.hardware, "hardware", "", "transcoding hardware: auto, gpu or cpu (default auto)")
	fs.StringVar(&f.policy, "playback-policy", "", "public or signed (default public)")
	fs.IntVar(&f.segment, "segment-duration", 0, "segment duration in seconds, 1-10 (default 2)")
	fs.IntVar(&f.window, "playlist-window-size", 0, "segments in the live playlist, 3-100 (default 6)")
	fs.BoolVar(&f.disabled, "disabled", false, "refuse publishing to the stream")
	fs.StringVar(&f.record, "record", "", "recording: off or automatic (every session becomes an asset; default off)")
	fs.IntVar(&f.deleteAfterDays, "delete-after-days", 0, "with --record: days a recorded asset is kept, 1-3650 (0 or absent: until deleted)")
	fs.IntVar(&f.dvrWindow, "dvr-window", 0, "seconds of live history (DVR), 0-21600 (default 0: the playlist window only)")
	fs.Float64Var(&f.thumbInterval, "thumbnail-interval", 0, "seconds between live thumbnails, 1-3600 (default 10)")
}

// update returns the fields whose flags were given.
func (f *streamFlags) update(fs *pflag.FlagSet) apiv1.StreamUpdate {
	var u apiv1.StreamUpdate
	set := fs.Changed
	if set("name") {
		u.Name = &f.name
	}
	if set("profile") {
		u.Profile = &f.profile
	}
	if set("outputs") {
		u.Outputs = f.outputs
		if u.Outputs == nil {
			u.Outputs = []string{}
		}
	}
	if set("hardware") {
		u.Hardware = &f.hardware
	}
	if set("playback-policy") {
		u.PlaybackPolicy = &f.policy
	}
	if set("segment-duration") {
		u.SegmentDuration = &f.segment
	}
	if set("playlist-window-size") {
		u.PlaylistWindowSize = &f.window
	}
	if set("disabled") {
		u.Disabled = &f.disabled
	}
	if set("record") {
		// The API replaces the setting as a whole (mode and retention).
		r := &apiv1.RecordingSetting{Mode: &f.record}
		if f.deleteAfterDays != 0 {
			r.DeleteAfterDays = &f.deleteAfterDays
		}
		u.Recording = r
	}
	if set("dvr-window") {
		u.DVRWindowS = &f.dvrWindow
	}
	if set("thumbnail-interval") {
		u.ThumbnailIntervalS = &f.thumbInterval
	}
	return u
}

// check refuses flags that only make sense together.
func (f *streamFlags) check(fs *pflag.FlagSet) error {
	if fs.Changed("delete-after-days") && !fs.Changed("record") {
		return fmt.Errorf("--delete-after-days needs --record: the recording setting (mode and retention) is set as a whole")
	}
	return nil
}

// streamFieldFlags are the flags registered by streamFlags.register.
var streamFieldFlags = []string{"name", "profile", "outputs", "hardware", "playback-policy", "segment-duration", "playlist-window-size", "disabled",
	"record", "delete-after-days", "dvr-window", "thumbnail-interval"}

func anyChanged(fs *pflag.FlagSet, names []string) bool {
	for _, n := range names {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

func registerStreamCompletions(cmd *cobra.Command) {
	noFile := cobra.ShellCompDirectiveNoFileComp
	_ = cmd.RegisterFlagCompletionFunc("hardware", cobra.FixedCompletions([]string{job.HardwareAuto, job.HardwareGPU, job.HardwareCPU}, noFile))
	_ = cmd.RegisterFlagCompletionFunc("playback-policy", cobra.FixedCompletions([]string{"public", "signed"}, noFile))
	_ = cmd.RegisterFlagCompletionFunc("outputs", cobra.FixedCompletions([]string{job.OutputHLS, job.OutputDASH}, noFile))
	_ = cmd.RegisterFlagCompletionFunc("record", cobra.FixedCompletions([]string{"off", "automatic"}, noFile))
}

func (g *globals) printStream(s apiv1.Stream) error {
	if g.json() {
		return g.printJSON(s)
	}
	rows := [][]string{
		{"id", s.ID.String()}, {"name", s.Name}, {"status", s.Status}, {"stream key", s.StreamKey},
		{"profile", s.Profile.Name}, {"outputs", strings.Join(s.Outputs, ",")}, {"hardware", s.Hardware},
		{"playback policy", s.PlaybackPolicy}, {"segment duration", strconv.Itoa(s.SegmentDuration) + " s"},
		{"playlist window", strconv.Itoa(s.PlaylistWindowSize) + " segments"}, {"disabled", strconv.FormatBool(s.Disabled)},
		{"recording", recordingText(s.Recording)}, {"dvr window", strconv.Itoa(s.DVRWindowS) + " s"},
		{"thumbnail interval", strconv.FormatFloat(s.ThumbnailIntervalS, 'g', -1, 64) + " s"},
		{"ingest rtmp", s.Ingest.RTMP}, {"ingest srt", s.Ingest.SRT}, {"ingest rtsp", s.Ingest.RTSP}, {"ingest whip", s.Ingest.WHIP},
	}
	if s.Playback.HLS != "" {
		rows = append(rows, []string{"playback hls", s.Playback.HLS})
	}
	if s.Playback.DASH != "" {
		rows = append(rows, []string{"playback dash", s.Playback.DASH})
	}
	if ss := s.Session; ss != nil {
		rows = append(rows,
			[]string{"session", ss.ID.String()}, []string{"session status", ss.Status},
			[]string{"session started", ss.StartedAt.UTC().Format(time.RFC3339)},
			[]string{"edge", ss.EdgeID}, []string{"protocol", ss.Protocol},
			[]string{"source video", videoText(ss.Source)}, []string{"source audio", audioText(ss.Source)},
			[]string{"source bitrate", kbpsText(ss.Source.BitrateKbps)}, []string{"worker", orDash(ss.WorkerID)})
		if ss.LastError != nil {
			rows = append(rows, []string{"last error", *ss.LastError})
		}
		if ss.KickReason != nil {
			rows = append(rows, []string{"kick requested", *ss.KickReason})
		}
	}
	rows = append(rows, healthRows(s.Health)...)
	rows = append(rows, []string{"created", s.CreatedAt.UTC().Format(time.RFC3339)}, []string{"updated", s.UpdatedAt.UTC().Format(time.RFC3339)})
	return g.table([]string{"FIELD", "VALUE"}, rows)
}

// healthRows are the stream's health: its status, the source and output as
// the worker measures them, and each warning with what to change.
func healthRows(h apiv1.StreamHealth) [][]string {
	status := h.Status
	if h.UpdatedAt != nil {
		status += " (reported " + h.UpdatedAt.UTC().Format(time.RFC3339) + ")"
	}
	rows := [][]string{{"health", status}}
	if h.UpdatedAt == nil {
		return rows
	}
	src, out := h.Source, h.Output
	source := fmt.Sprintf("%dx%d @ %.2f fps, keyframe every %.1f s, %d kbps, B-frames %s, audio %s",
		src.Width, src.Height, src.FrameRate, src.KeyframeIntervalS, src.BitrateKbps, yesNo(src.BFrames), cmp.Or(src.Audio, "unknown"))
	output := fmt.Sprintf("%.2f× real time, %d dropped frames, %d late segments", out.RealtimeFactor, out.DroppedFrames, out.SegmentsLate)
	rows = append(rows, []string{"health source", source}, []string{"health output", output})
	for _, w := range h.Warnings {
		rows = append(rows, []string{"warning " + w.Code, w.Message})
	}
	return rows
}

// recordingText is e.g. "automatic, kept 30 days" or "off".
func recordingText(r apiv1.Recording) string {
	switch {
	case r.Mode != "automatic":
		return r.Mode
	case r.DeleteAfterDays == nil:
		return "automatic, kept until deleted"
	default:
		return fmt.Sprintf("automatic, kept %d days", *r.DeleteAfterDays)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// videoText is e.g. "H264 1920x1080" (and the frame rate when known).
func videoText(s apiv1.Source) string {
	if s.VideoCodec == "" && s.Width == 0 {
		return "-"
	}
	out := strings.TrimSpace(s.VideoCodec + " " + s.VideoProfile)
	if s.Width > 0 && s.Height > 0 {
		out += fmt.Sprintf(" %dx%d", s.Width, s.Height)
	}
	if s.FrameRate > 0 {
		out += fmt.Sprintf(" @ %.4g fps", s.FrameRate)
	}
	return strings.TrimSpace(out)
}

func audioText(s apiv1.Source) string {
	if s.AudioCodec == "" {
		return "-"
	}
	out := s.AudioCodec
	if s.AudioChannels > 0 {
		out += fmt.Sprintf(" %dch", s.AudioChannels)
	}
	if s.AudioSampleRate > 0 {
		out += fmt.Sprintf(" %d Hz", s.AudioSampleRate)
	}
	return out
}

func kbpsText(n int) string {
	if n <= 0 {
		return "-"
	}
	return strconv.Itoa(n) + " kbps"
}

func orDash(p *string) string {
	if p == nil || *p == "" {
		return "-"
	}
	return *p
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func newStreamsCmd(g *globals) *cobra.Command {
	var cc config.Client
	cmd := apiCommand("streams", "Manage streams through the API", &cc)
	cmd.Aliases = []string{"stream"}

	var cf streamFlags
	create := &cobra.Command{
		Use:   "create --name NAME [flags]",
		Short: "Create a stream and print it with its stream key and URLs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			if err := cf.check(cmd.Flags()); err != nil {
				return err
			}
			u := cf.update(cmd.Flags())
			req := apiv1.StreamCreate{Name: cf.name, Profile: u.Profile, Outputs: u.Outputs, Hardware: u.Hardware,
				PlaybackPolicy: u.PlaybackPolicy, SegmentDuration: u.SegmentDuration, PlaylistWindowSize: u.PlaylistWindowSize, Disabled: u.Disabled,
				Recording: u.Recording, DVRWindowS: u.DVRWindowS, ThumbnailIntervalS: u.ThumbnailIntervalS}
			s, err := c.CreateStream(cmd.Context(), req)
			if err != nil {
				return err
			}
			return g.printStream(s)
		},
	}
	cf.register(create.Flags())
	registerStreamCompletions(create)

	list := &cobra.Command{
		Use:   "list",
		Short: "List every stream",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			all, err := c.AllStreams(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if all == nil {
					all = []apiv1.Stream{}
				}
				return g.printJSON(all)
			}
			rows := make([][]string, len(all))
			for i, s := range all {
				rows[i] = []string{s.ID.String(), s.Name, s.Status, s.Profile.Name, strings.Join(s.Outputs, ","),
					strconv.FormatBool(s.Disabled), s.CreatedAt.UTC().Format(time.RFC3339)}
			}
			return g.table([]string{"ID", "NAME", "STATUS", "PROFILE", "OUTPUTS", "DISABLED", "CREATED"}, rows)
		},
	}

	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a stream with its stream key and URLs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			s, err := c.GetStream(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printStream(s)
		},
	}

	var uf streamFlags
	update := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change the given fields of a stream",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			if err := uf.check(cmd.Flags()); err != nil {
				return err
			}
			u := uf.update(cmd.Flags())
			if !anyChanged(cmd.Flags(), streamFieldFlags) {
				return fmt.Errorf("nothing to update: give at least one of the flags")
			}
			s, err := c.UpdateStream(cmd.Context(), args[0], u)
			if err != nil {
				return err
			}
			return g.printStream(s)
		},
	}
	uf.register(update.Flags())
	registerStreamCompletions(update)

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a stream",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			if err := c.DeleteStream(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(g.env.Stdout, "deleted stream %s\n", args[0])
			return nil
		},
	}

	rotate := &cobra.Command{
		Use:   "rotate-key ID",
		Short: "Give a stream a new stream key (the old one stops working)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			s, err := c.RotateStreamKey(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printStream(s)
		},
	}
	disconnect := &cobra.Command{
		Use:   "disconnect ID",
		Short: "Kick the stream's live publisher (it may reconnect: disable the stream or rotate its key to keep it out)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			s, err := c.DisconnectStream(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(s)
			}
			fmt.Fprintf(g.env.Stdout, "disconnecting the publisher of stream %s\n", s.ID)
			return nil
		},
	}

	var sessionsLimit int
	sessions := &cobra.Command{
		Use:   "sessions ID",
		Short: "List a stream's sessions, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			page, err := c.StreamSessions(cmd.Context(), args[0], client.ListOptions{Limit: sessionsLimit})
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(page.Data)
			}
			rows := make([][]string, len(page.Data))
			for i, ss := range page.Data {
				rows[i] = []string{ss.ID.String(), ss.Status, ss.StartedAt.UTC().Format(time.RFC3339), timeOrDash(ss.EndedAt),
					orDash(ss.EndReason), ss.EdgeID, ss.Protocol, videoText(ss.Source), orDash(ss.WorkerID)}
			}
			return g.table([]string{"ID", "STATUS", "STARTED", "ENDED", "END REASON", "EDGE", "PROTOCOL", "SOURCE", "WORKER"}, rows)
		},
	}
	sessions.Flags().IntVar(&sessionsLimit, "limit", 50, "how many sessions to show (1-200)")

	var (
		ttl time.Duration
		ip  string
	)
	playbackURL := &cobra.Command{
		Use:   "playback-url ID [--ttl 1h] [--ip ADDR]",
		Short: "Mint a signed playback token and print the HLS and DASH URLs carrying it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cc)
			if err != nil {
				return err
			}
			secs := int(ttl / time.Second)
			t, err := c.CreatePlaybackToken(cmd.Context(), args[0], apiv1.PlaybackTokenCreate{TTLSeconds: &secs, IP: ip})
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(t)
			}
			for _, u := range []string{t.HLS, t.DASH} {
				if u != "" {
					fmt.Fprintln(g.env.Stdout, u)
				}
			}
			fmt.Fprintf(g.env.Stderr, "valid until %s\n", t.ExpiresAt.UTC().Format(time.RFC3339))
			return nil
		},
	}
	playbackURL.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the URLs stay valid (1m-168h)")
	playbackURL.Flags().StringVar(&ip, "ip", "", "bind the token to this viewer IP address")

	cmd.AddCommand(create, list, get, update, del, rotate, disconnect, sessions, playbackURL)
	return cmd
}
