package vod_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

var tmpRoot string // removed by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vod-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// A clip is a real CMAF recording made by ffmpeg's HLS muxer: two video
// renditions (one track per file, like the worker's packager) and an AAC
// audio track, 2 s segments.
type clip struct {
	dir        string
	renditions []clipRendition
}

type clipRendition struct {
	name, dir string
	bandwidth int
}

var clips sync.Map // preset -> *clipResult

type clipResult struct {
	once sync.Once
	c    *clip
	err  error
}

// makeClip returns the clip made with an x264 preset ("veryfast" has
// B-frames, so composition offsets; "ultrafast" has none and another SPS),
// made once per test binary.
func makeClip(t *testing.T, preset string, seconds int) *clip {
	t.Helper()
	ffmpeg := testkit.FFmpeg(t)
	v, _ := clips.LoadOrStore(fmt.Sprintf("%s-%d", preset, seconds), &clipResult{})
	r := v.(*clipResult)
	r.once.Do(func() {
		dir := filepath.Join(tmpRoot, fmt.Sprintf("clip-%s-%d", preset, seconds))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error",
			"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", fmt.Sprint(seconds),
			"-map", "0:v", "-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
			"-filter:v:1", "scale=320:180", "-b:v:0", "800k", "-b:v:1", "300k",
			"-c:a", "aac", "-b:a", "64k", "-ac", "2",
			"-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2", "-hls_playlist_type", "vod",
			"-var_stream_map", "v:0 v:1 a:0", "-hls_fmp4_init_filename", "init.mp4",
			"-hls_segment_filename", filepath.Join(dir, "out_%v", "seg%d.m4s"),
			filepath.Join(dir, "out_%v", "index.m3u8"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			r.err = fmt.Errorf("ffmpeg: %v: %s", err, out)
			return
		}
		r.c = &clip{dir: dir, renditions: []clipRendition{
			{"360p", filepath.Join(dir, "out_0"), 800_000},
			{"180p", filepath.Join(dir, "out_1"), 300_000},
			{"audio", filepath.Join(dir, "out_2"), 64_000},
		}}
	})
	require.NoError(t, r.err)
	return r.c
}

// run describes one packager run of a worker recording the clip.
type run struct {
	token     int64
	run       int
	start     time.Time // wall clock of the first sample
	firstNum  uint64
	skipNums  map[uint64]bool // segment numbers lost (not stored)
	rendition map[string]bool // renditions to record (nil: all)
}

// record stores the clip's files under the asset's keys as a worker would
// and returns the RecordedObjects it would report, measured with mp4ff.
func record(t *testing.T, st storage.Store, asset uuid.UUID, c *clip, r run) []job.RecordedObject {
	t.Helper()
	ctx := t.Context()
	prefix := job.AssetPrefix(asset)
	var objs []job.RecordedObject
	for _, rd := range c.renditions {
		if r.rendition != nil && !r.rendition[rd.name] {
			continue
		}
		initData, err := os.ReadFile(filepath.Join(rd.dir, "init_"+strings.TrimPrefix(filepath.Base(rd.dir), "out_")+".mp4"))
		require.NoError(t, err)
		init, err := mp4.DecodeFile(bytes.NewReader(initData))
		require.NoError(t, err)
		trak := init.Moov.Trak
		tr := &job.RecordedTrack{Timescale: trak.Mdia.Mdhd.Timescale, Bandwidth: rd.bandwidth}
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
			t.Fatalf("unexpected sample entry in %s", rd.dir)
		}
		initKey := fmt.Sprintf("%s%s/init-%d-%d.mp4", prefix, rd.name, r.token, r.run)
		require.NoError(t, st.Put(ctx, initKey, bytes.NewReader(initData), int64(len(initData)), "video/mp4"))
		objs = append(objs, job.RecordedObject{Kind: job.ObjectInit, Rendition: rd.name, Key: initKey,
			Size: int64(len(initData)), Run: r.run, Track: tr})

		var firstTime uint64
		for i := 0; ; i++ {
			data, err := os.ReadFile(filepath.Join(rd.dir, fmt.Sprintf("seg%d.m4s", i)))
			if os.IsNotExist(err) {
				break
			}
			require.NoError(t, err)
			f, err := mp4.DecodeFile(bytes.NewReader(data))
			require.NoError(t, err)
			frag := f.Segments[0].Fragments[0]
			samples, err := frag.GetFullSamples(init.Moov.Mvex.Trex)
			require.NoError(t, err)
			base := frag.Moof.Traf.Tfdt.BaseMediaDecodeTime()
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
			require.NotEmpty(t, samples)
			if i == 0 {
				firstTime = base
			}
			num := r.firstNum + uint64(i)
			if r.skipNums[num] {
				continue
			}
			key := fmt.Sprintf("%s%s/%d-%d.m4s", prefix, rd.name, r.token, num)
			require.NoError(t, st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "video/iso.segment"))
			scale := float64(tr.Timescale)
			objs = append(objs, job.RecordedObject{Kind: job.ObjectSegment, Rendition: rd.name, Key: key,
				Size: int64(len(data)), Run: r.run, Number: num, Init: initKey,
				Start:      r.start.Add(time.Duration(float64(base-firstTime) / scale * float64(time.Second))),
				DurationS:  float64(dur) / scale,
				MediaStart: base})
		}
	}
	return objs
}

// thumbnail stores a JPEG made by ffmpeg as the thumbnail taken at at.
func thumbnail(t *testing.T, st storage.Store, asset uuid.UUID, at time.Time, color string) job.RecordedObject {
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

// serve is a file server in front of the store (as a router would be), so
// ffprobe reads the VOD files over HTTP from either backend.
func serve(t *testing.T, st storage.Store) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, info, err := st.Get(r.Context(), strings.TrimPrefix(r.URL.Path, "/"), 0, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, info.Key, info.ModTime, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// download copies an object to a local file.
func download(t *testing.T, st storage.Store, key string) string {
	t.Helper()
	rc, _, err := st.Get(t.Context(), key, 0, 0)
	require.NoError(t, err)
	defer rc.Close()
	p := filepath.Join(t.TempDir(), filepath.Base(key))
	f, err := os.Create(p)
	require.NoError(t, err)
	_, err = io.Copy(f, rc)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return p
}

// probe runs ffprobe and returns its stdout; it fails the test on an error
// or on anything ffprobe logs at level error.
func probe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.FFprobe(t), append([]string{"-v", "error"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "ffprobe %v: %s", args, stderr.String())
	require.Empty(t, strings.TrimSpace(stderr.String()), "ffprobe %v logged errors", args)
	return stdout.String()
}

// decode decodes every stream of input fully with ffmpeg and fails on any
// error it logs.
func decode(t *testing.T, input string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.FFmpeg(t), "-nostdin", "-v", "error", "-i", input, "-map", "0", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "ffmpeg logged decoding errors")
}
