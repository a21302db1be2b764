// Package vodtest records real CMAF media into a test's store the way a
// worker does (docs/recording.md), for the tests of the packages that build
// or serve recorded assets (services/internal/vod, services/internal/api).
// The media is made by ffmpeg (lavfi test sources, libx264, AAC) once per
// test binary and held in memory.
package vodtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// Clip is a real CMAF recording made by ffmpeg's HLS muxer: two video
// renditions, "360p" (640x360) and "180p" (320x180), one track per file like
// the worker's packager, and an AAC "audio" track; 30 frames/s, 2 s
// segments, every segment starting with a key frame.
type Clip struct {
	Renditions []Rendition
}

// Rendition is one track of a Clip: its CMAF header and media segments.
type Rendition struct {
	Name      string
	Bandwidth int // the encoder's target bit rate (bits/s)
	Init      []byte
	Segments  [][]byte
}

// SegmentS is the duration of a clip's full segments (seconds).
const SegmentS = 2

// FrameS is the duration of one video frame of a clip (seconds).
const FrameS = 1.0 / 30

var clips sync.Map // "preset-seconds" -> *clipResult

type clipResult struct {
	once sync.Once
	c    *Clip
	err  error
}

// MakeClip returns the clip of the given length made with an x264 preset
// ("veryfast" has B-frames, so composition offsets; "ultrafast" has none and
// other parameter sets). Each is made once per test binary.
func MakeClip(t testing.TB, preset string, seconds int) *Clip {
	t.Helper()
	ffmpeg := testkit.FFmpeg(t)
	v, _ := clips.LoadOrStore(preset+"-"+strconv.Itoa(seconds), &clipResult{})
	r := v.(*clipResult)
	r.once.Do(func() { r.c, r.err = makeClip(ffmpeg, preset, seconds) })
	require.NoError(t, r.err)
	return r.c
}

func makeClip(ffmpeg, preset string, seconds int) (*Clip, error) {
	dir, err := os.MkdirTemp("", "vodtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(seconds),
		"-map", "0:v", "-map", "0:v", "-map", "1:a",
		"-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
		"-filter:v:1", "scale=320:180", "-b:v:0", "800k", "-b:v:1", "300k",
		"-c:a", "aac", "-b:a", "64k", "-ac", "2",
		"-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", strconv.Itoa(SegmentS), "-hls_playlist_type", "vod",
		"-var_stream_map", "v:0 v:1 a:0", "-hls_fmp4_init_filename", "init.mp4",
		"-hls_segment_filename", filepath.Join(dir, "out_%v", "seg%d.m4s"),
		filepath.Join(dir, "out_%v", "index.m3u8"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	c := &Clip{}
	for i, rd := range []struct {
		name      string
		bandwidth int
	}{{"360p", 800_000}, {"180p", 300_000}, {"audio", 64_000}} {
		out := filepath.Join(dir, fmt.Sprintf("out_%d", i))
		r := Rendition{Name: rd.name, Bandwidth: rd.bandwidth}
		if r.Init, err = os.ReadFile(filepath.Join(out, fmt.Sprintf("init_%d.mp4", i))); err != nil {
			return nil, err
		}
		for n := 0; ; n++ {
			data, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("seg%d.m4s", n)))
			if os.IsNotExist(err) {
				break
			} else if err != nil {
				return nil, err
			}
			r.Segments = append(r.Segments, data)
		}
		if len(r.Segments) == 0 {
			return nil, fmt.Errorf("ffmpeg made no segment of %s", rd.name)
		}
		c.Renditions = append(c.Renditions, r)
	}
	return c, nil
}

// Run describes one packager run of a worker recording a clip.
type Run struct {
	Token    int64     // the worker's lease token
	Run      int       // the packager run on that worker
	Start    time.Time // wall clock of the first sample
	FirstNum uint64    // the number of the clip's first segment
	// Count is how many of the clip's segments, from its first, the run
	// recorded (0: all).
	Count      int
	Skip       map[uint64]bool // segment numbers lost (not stored, not returned)
	Renditions map[string]bool // renditions to record (nil: all)
}

// Record stores a clip's files under the asset's keys (job.AssetPrefix) as
// a worker would and returns the RecordedObjects it would report, in upload
// order, each rendition's init first, with the sizes stored and the time
// spans measured with mp4ff.
func Record(t testing.TB, st storage.Store, asset uuid.UUID, c *Clip, r Run) []job.RecordedObject {
	t.Helper()
	ctx := t.Context()
	prefix := job.AssetPrefix(asset)
	var objs []job.RecordedObject
	for _, rd := range c.Renditions {
		if r.Renditions != nil && !r.Renditions[rd.Name] {
			continue
		}
		init, err := mp4.DecodeFile(bytes.NewReader(rd.Init))
		require.NoError(t, err)
		trak := init.Moov.Trak
		tr := &job.RecordedTrack{Timescale: trak.Mdia.Mdhd.Timescale, Bandwidth: rd.Bandwidth}
		stsd := trak.Mdia.Minf.Stbl.Stsd
		switch {
		case stsd.AvcX != nil:
			rec := stsd.AvcX.AvcC.DecConfRec
			tr.Codec = fmt.Sprintf("avc1.%02x%02x%02x", rec.AVCProfileIndication, rec.ProfileCompatibility, rec.AVCLevelIndication)
			tr.Width, tr.Height, tr.FrameRate = int(stsd.AvcX.Width), int(stsd.AvcX.Height), "30"
		case stsd.Mp4a != nil:
			tr.Audio, tr.Codec = true, "mp4a.40.2"
			tr.Channels, tr.SampleRate = int(stsd.Mp4a.ChannelCount), int(stsd.Mp4a.SampleRate)
		default:
			t.Fatalf("unexpected sample entry in the %s init", rd.Name)
		}
		initKey := fmt.Sprintf("%s%s/init-%d-%d.mp4", prefix, rd.Name, r.Token, r.Run)
		require.NoError(t, st.Put(ctx, initKey, bytes.NewReader(rd.Init), int64(len(rd.Init)), "video/mp4"))
		objs = append(objs, job.RecordedObject{Kind: job.ObjectInit, Rendition: rd.Name, Key: initKey,
			Size: int64(len(rd.Init)), Run: r.Run, Track: tr})

		var firstTime uint64
		for i, data := range rd.Segments {
			if r.Count > 0 && i >= r.Count {
				break
			}
			f, err := mp4.DecodeFile(bytes.NewReader(data))
			require.NoError(t, err)
			base := f.Segments[0].Fragments[0].Moof.Traf.Tfdt.BaseMediaDecodeTime()
			var dur uint64
			for _, ms := range f.Segments {
				for _, fr := range ms.Fragments {
					ss, err := fr.GetFullSamples(init.Moov.Mvex.Trex)
					require.NoError(t, err)
					for _, s := range ss {
						dur += uint64(s.Dur)
					}
				}
			}
			require.NotZero(t, dur, "segment %d of %s has no samples", i, rd.Name)
			if i == 0 {
				firstTime = base
			}
			num := r.FirstNum + uint64(i)
			if r.Skip[num] {
				continue
			}
			key := fmt.Sprintf("%s%s/%d-%d.m4s", prefix, rd.Name, r.Token, num)
			require.NoError(t, st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "video/iso.segment"))
			scale := float64(tr.Timescale)
			objs = append(objs, job.RecordedObject{Kind: job.ObjectSegment, Rendition: rd.Name, Key: key,
				Size: int64(len(data)), Run: r.Run, Number: num, Init: initKey,
				Start:      r.Start.Add(time.Duration(float64(base-firstTime) / scale * float64(time.Second))),
				DurationS:  float64(dur) / scale,
				MediaStart: base})
		}
	}
	return objs
}

// Thumbnail stores a 160x90 JPEG of one color, made by ffmpeg, as the
// thumbnail taken at at and returns it as a worker reports it.
func Thumbnail(t testing.TB, st storage.Store, asset uuid.UUID, at time.Time, color string) job.RecordedObject {
	t.Helper()
	out := filepath.Join(t.TempDir(), "thumb.jpg")
	cmd := exec.CommandContext(t.Context(), testkit.FFmpeg(t), "-nostdin", "-v", "error", "-f", "lavfi",
		"-i", "color=c="+color+":size=160x90", "-frames:v", "1", out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	key := fmt.Sprintf("%sthumbs/%d.jpg", job.AssetPrefix(asset), at.UnixMilli())
	require.NoError(t, st.Put(t.Context(), key, bytes.NewReader(data), int64(len(data)), "image/jpeg"))
	return job.RecordedObject{Kind: job.ObjectThumbnail, Key: key, Size: int64(len(data)), Start: at, Width: 160, Height: 90}
}
