package recording

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/packager"
)

// content is real encoded media (ffmpeg: two renditions with identical
// GOPs of 1 s, stereo AAC), demuxed into the packager's input types, in the
// order a live pipeline delivers them.
type content struct {
	video  []media.VideoTrack
	audio  *media.AudioTrack
	events []event
}

type event struct {
	ts    time.Duration
	video int // -1 for audio
	au    media.VideoAU
	frame media.AudioFrame
}

var (
	contentOnce sync.Once
	theContent  *content
	contentErr  error
)

// loadContent encodes (once per test binary) 12 s of test pattern and tone.
func loadContent(t *testing.T) *content {
	t.Helper()
	ffmpeg := testkit.FFmpeg(t)
	contentOnce.Do(func() { theContent, contentErr = encodeContent(ffmpeg) })
	require.NoError(t, contentErr)
	return theContent
}

func encodeContent(ffmpeg string) (*content, error) {
	dir, err := os.MkdirTemp("", "recording-content-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "clip.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "12", "-filter_complex", "[0:v]split=2[a][b];[b]scale=320x180[c]", "-map", "[a]", "-map", "[c]",
		"-map", "1:a", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
		"-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "2", "-b:v", "600k",
		"-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, b)
	}
	return demux(out)
}

// demux reads the fragmented MP4: video becomes Annex-B with SPS/PPS before
// every keyframe (as x264enc emits it), audio raw AAC frames.
func demux(path string) (*content, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	file, err := mp4.DecodeFile(f)
	if err != nil {
		return nil, fmt.Errorf("decoding mp4: %w", err)
	}
	c := &content{}
	type trackInfo struct {
		trex      *mp4.TrexBox
		timescale uint32
		video     int // index in c.video, -1 for audio
		ps        []byte
	}
	var infos []trackInfo
	for _, trak := range file.Init.Moov.Traks {
		ts := trak.Mdia.Mdhd.Timescale
		trex, ok := file.Init.Moov.Mvex.GetTrex(trak.Tkhd.TrackID)
		if !ok {
			return nil, fmt.Errorf("no trex for track %d", trak.Tkhd.TrackID)
		}
		stsd := trak.Mdia.Minf.Stbl.Stsd
		switch {
		case stsd.AvcX != nil:
			rec := stsd.AvcX.AvcC.DecConfRec
			var ps []byte
			for _, n := range append(slices.Clone(rec.SPSnalus), rec.PPSnalus...) {
				ps = append(ps, 0, 0, 0, 1)
				ps = append(ps, n...)
			}
			sps, err := avc.ParseSPSNALUnit(rec.SPSnalus[0], true)
			if err != nil {
				return nil, err
			}
			c.video = append(c.video, media.VideoTrack{Name: fmt.Sprintf("%dp", sps.Height), Width: int(sps.Width),
				Height: int(sps.Height), FrameRateNum: 30, FrameRateDen: 1, BitrateBps: 600_000, MaxBitrateBps: 900_000})
			infos = append(infos, trackInfo{trex: trex, timescale: ts, video: len(c.video) - 1, ps: ps})
		case stsd.Mp4a != nil:
			asc := stsd.Mp4a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig
			c.audio = &media.AudioTrack{SampleRate: int(ts), Channels: int(stsd.Mp4a.ChannelCount),
				BitrateBps: 128_000, Config: slices.Clone(asc)}
			infos = append(infos, trackInfo{trex: trex, timescale: ts, video: -1})
		}
	}
	toDur := func(t int64, ts uint32) time.Duration { return time.Duration(t * int64(time.Second) / int64(ts)) }
	for _, seg := range file.Segments {
		for _, frag := range seg.Fragments {
			for _, info := range infos {
				samples, err := frag.GetFullSamples(info.trex)
				if err != nil {
					continue // fragment without this track
				}
				for _, s := range samples {
					pts := toDur(s.PresentationTime(), info.timescale)
					dur := toDur(int64(s.Dur), info.timescale)
					if info.video < 0 {
						c.events = append(c.events, event{ts: pts, video: -1,
							frame: media.AudioFrame{PTS: pts, Duration: dur, Data: slices.Clone(s.Data)}})
						continue
					}
					dts := toDur(int64(s.DecodeTime), info.timescale)
					data := avc.ConvertSampleToByteStream(slices.Clone(s.Data))
					if s.IsSync() {
						data = append(slices.Clone(info.ps), data...)
					}
					c.events = append(c.events, event{ts: dts, video: info.video,
						au: media.VideoAU{PTS: pts, DTS: dts, Duration: dur, Keyframe: s.IsSync(), Data: data}})
				}
			}
		}
	}
	if len(c.video) != 2 || c.audio == nil {
		return nil, fmt.Errorf("expected 2 video tracks and audio, got %d and %v", len(c.video), c.audio != nil)
	}
	slices.SortStableFunc(c.events, func(a, b event) int { return cmp.Compare(a.ts, b.ts) })
	return c, nil
}

// feed writes events to the packager in order.
func feed(t *testing.T, p *packager.Packager, evs []event) {
	t.Helper()
	for _, e := range evs {
		if e.video >= 0 {
			require.NoError(t, p.WriteVideo(e.video, e.au))
		} else {
			require.NoError(t, p.WriteAudio(e.frame))
		}
	}
}
