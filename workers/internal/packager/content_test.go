package packager

import (
	"cmp"
	"context"
	"fmt"
	"github.com/dionysia/dionysia/pkg/testkit"
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

	"github.com/dionysia/dionysia/workers/internal/media"
)

// testContent is real encoded media, demuxed into the packager's input types
// with the timestamps ffmpeg gave them.
type testContent struct {
	video  []media.VideoTrack
	audio  *media.AudioTrack
	vAUs   [][]media.VideoAU
	frames []media.AudioFrame
}

var (
	contentOnce sync.Map // spec string -> *contentResult
)

type contentResult struct {
	once sync.Once
	c    *testContent
	err  error
}

// contentSpec describes a clip for ffmpeg: two renditions with identical GOPs
// (split before scaling, fixed GOP, no scene cut) and stereo AAC.
type contentSpec struct {
	seconds  int
	fps      int
	gop      int
	bframes  int
	big      string // WxH of the first rendition
	small    string // WxH of the second rendition
	audioHz  int
	noAudio  bool
	onlyBig  bool
	testName string
}

func (s contentSpec) key() string { return fmt.Sprintf("%+v", s) }

// loadContent encodes (once per spec and test binary) and demuxes a clip.
func loadContent(t testing.TB, spec contentSpec) *testContent {
	t.Helper()
	testkit.FFmpeg(t)
	v, _ := contentOnce.LoadOrStore(spec.key(), &contentResult{})
	res := v.(*contentResult)
	res.once.Do(func() { res.c, res.err = encodeContent(spec) })
	require.NoError(t, res.err)
	return res.c
}

func encodeContent(spec contentSpec) (*testContent, error) {
	dir, err := os.MkdirTemp("", "packager-content-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "clip.mp4")
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", spec.big, spec.fps)}
	if !spec.noAudio {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=%d", spec.audioHz))
	}
	args = append(args, "-t", fmt.Sprint(spec.seconds))
	if spec.onlyBig {
		args = append(args, "-map", "0:v")
	} else {
		args = append(args, "-filter_complex", fmt.Sprintf("[0:v]split=2[a][b];[b]scale=%s[c]", spec.small),
			"-map", "[a]", "-map", "[c]")
	}
	if !spec.noAudio {
		args = append(args, "-map", "1:a", "-c:a", "aac", "-b:a", "128k", "-ac", "2")
	}
	args = append(args, "-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
		"-g", fmt.Sprint(spec.gop), "-keyint_min", fmt.Sprint(spec.gop), "-sc_threshold", "0",
		"-bf", fmt.Sprint(spec.bframes), "-b:v", "600k",
		"-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, b)
	}
	return demux(out)
}

// demux reads a fragmented MP4 with mp4ff and converts its samples: video to
// Annex-B with SPS/PPS in front of every keyframe (as x264enc emits with
// byte-stream caps), audio to raw AAC frames.
func demux(path string) (*testContent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	file, err := mp4.DecodeFile(f)
	if err != nil {
		return nil, fmt.Errorf("decoding mp4: %w", err)
	}
	c := &testContent{}
	type trackInfo struct {
		trex      *mp4.TrexBox
		timescale uint32
		video     int // index in c.vAUs, -1 for audio
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
			name := fmt.Sprintf("%dp", sps.Height)
			c.video = append(c.video, media.VideoTrack{Name: name, Width: int(sps.Width), Height: int(sps.Height),
				FrameRateNum: 30, FrameRateDen: 1, BitrateBps: 600_000, MaxBitrateBps: 900_000})
			c.vAUs = append(c.vAUs, nil)
			infos = append(infos, trackInfo{trex: trex, timescale: ts, video: len(c.vAUs) - 1, ps: ps})
		case stsd.Mp4a != nil:
			asc := stsd.Mp4a.Esds.DecConfigDescriptor.DecSpecificInfo.DecConfig
			c.audio = &media.AudioTrack{SampleRate: int(ts), Channels: int(stsd.Mp4a.ChannelCount),
				BitrateBps: 128_000, Config: slices.Clone(asc)}
			infos = append(infos, trackInfo{trex: trex, timescale: ts, video: -1})
		}
	}
	toDur := func(t int64, ts uint32) time.Duration {
		return time.Duration(t * int64(time.Second) / int64(ts))
	}
	for _, seg := range file.Segments {
		for _, frag := range seg.Fragments {
			for _, info := range infos {
				samples, err := frag.GetFullSamples(info.trex)
				if err != nil {
					continue // fragment without this track
				}
				for _, s := range samples {
					dts := toDur(int64(s.DecodeTime), info.timescale)
					pts := toDur(s.PresentationTime(), info.timescale)
					dur := toDur(int64(s.Dur), info.timescale)
					if info.video < 0 {
						c.frames = append(c.frames, media.AudioFrame{PTS: pts, Duration: dur, Data: slices.Clone(s.Data)})
						continue
					}
					key := s.IsSync()
					data := avc.ConvertSampleToByteStream(slices.Clone(s.Data))
					if key {
						data = append(slices.Clone(info.ps), data...)
					}
					c.vAUs[info.video] = append(c.vAUs[info.video], media.VideoAU{PTS: pts, DTS: dts, Duration: dur, Keyframe: key, Data: data})
				}
			}
		}
	}
	for i, aus := range c.vAUs {
		if len(aus) == 0 {
			return nil, fmt.Errorf("video track %d has no samples", i)
		}
	}
	return c, nil
}

// event is one input sample in arrival order.
type event struct {
	ts    time.Duration
	video int // -1 for audio
	au    media.VideoAU
	frame media.AudioFrame
}

// interleaved returns every sample ordered by timestamp (DTS for video, PTS
// for audio), as a live pipeline delivers them; shift is added to all times.
func (c *testContent) interleaved(shift time.Duration) []event {
	var evs []event
	for i, aus := range c.vAUs {
		for _, au := range aus {
			au.PTS += shift
			au.DTS += shift
			evs = append(evs, event{ts: au.DTS, video: i, au: au})
		}
	}
	for _, f := range c.frames {
		f.PTS += shift
		evs = append(evs, event{ts: f.PTS, video: -1, frame: f})
	}
	slices.SortStableFunc(evs, func(a, b event) int {
		return cmp.Compare(a.ts, b.ts)
	})
	return evs
}

// feed writes events to the packager in order.
func feed(t *testing.T, p *Packager, evs []event) {
	t.Helper()
	for _, e := range evs {
		if e.video >= 0 {
			require.NoError(t, p.WriteVideo(e.video, e.au))
		} else {
			require.NoError(t, p.WriteAudio(e.frame))
		}
	}
}
