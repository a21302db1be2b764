package packager

import (
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/workers/internal/media"
)

var defaultSpec = contentSpec{seconds: 12, fps: 30, gop: 60, bframes: 2, big: "640x360", small: "320x180", audioHz: 48000}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testBundle struct {
	dir   string
	clock *fakeClock
	p     *Packager
}

func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	b := &testBundle{dir: t.TempDir(), clock: newFakeClock()}
	cfg.Dir = b.dir
	cfg.Clock = b.clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := New(cfg)
	require.NoError(t, err)
	b.p = p
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func TestPackagerHLSAndDASH(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{})
	require.NoError(t, b.p.Tracks(c.video, c.audio))
	feed(t, b.p, c.interleaved(0))
	require.NoError(t, b.p.Close(true))

	names := []string{"360p", "180p", AudioName}
	segsByTrack := map[string][]segInfo{}
	for _, name := range names {
		pl := readMediaPlaylist(t, filepath.Join(b.dir, name, MediaPlaylistName))
		require.True(t, pl.Closed, "%s: EXT-X-ENDLIST", name)
		raw := readFile(t, filepath.Join(b.dir, name, MediaPlaylistName))
		for _, tag := range []string{"#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-TARGETDURATION:2",
			"#EXT-X-MEDIA-SEQUENCE:", `#EXT-X-MAP:URI="init.mp4"`, "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-ENDLIST"} {
			require.Contains(t, raw, tag, name)
		}
		segs := playlistSegments(pl)
		require.Len(t, segs, 6, "%s: 12 s in 2 s segments", name)
		for i, s := range segs {
			if i < len(segs)-1 {
				require.InDelta(t, 2.0, s.dur, 0.2, "%s segment %d duration", name, i)
			}
			info := inspectSegment(t, filepath.Join(b.dir, name, s.uri), filepath.Join(b.dir, name, "init.mp4"))
			require.True(t, info.firstSync, "%s segment %d starts with a sync sample", name, i)
			require.InDelta(t, s.dur, info.dur, 0.0015, "%s segment %d: EXTINF equals the samples' duration", name, i)
			if i > 0 {
				prev := segsByTrack[name][i-1]
				require.InDelta(t, prev.start+prev.dur, info.start, 0.0001, "%s segment %d is contiguous", name, i)
			}
			segsByTrack[name] = append(segsByTrack[name], segInfo{uri: s.uri, start: info.start, dur: info.dur})
		}
	}
	// Segment n of every rendition covers the same time span; audio cuts at
	// the first frame at or after the video boundary.
	for i := range segsByTrack["360p"] {
		v, s, a := segsByTrack["360p"][i], segsByTrack["180p"][i], segsByTrack[AudioName][i]
		require.Equal(t, v.uri, s.uri)
		require.Equal(t, v.uri, a.uri)
		require.InDelta(t, v.start, s.start, 1e-9)
		require.InDelta(t, v.start, a.start, 1024.0/48000, "audio segment %d starts within a frame of video", i)
		require.GreaterOrEqual(t, a.start, v.start-1e-6)
	}

	// Multivariant playlist.
	master := readFile(t, filepath.Join(b.dir, MultivariantName))
	mp := readMasterPlaylist(t, filepath.Join(b.dir, MultivariantName))
	require.Len(t, mp.Variants, 2)
	require.Contains(t, master, "#EXT-X-VERSION:7")
	require.Contains(t, master, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"`)
	probe := ffprobeFirstSegment(t, filepath.Join(b.dir, "360p", MediaPlaylistName))
	for i, v := range mp.Variants {
		require.Equal(t, names[i]+"/index.m3u8", v.URI)
		require.Equal(t, "audio", v.Audio)
		require.NotZero(t, v.AverageBandwidth)
		require.GreaterOrEqual(t, v.Bandwidth, v.AverageBandwidth)
		require.Equal(t, 30.0, v.FrameRate)
		require.Equal(t, c.video[i].Width, atoi(t, strings.Split(v.Resolution, "x")[0]))
		codecs := strings.Split(v.Codecs, ",")
		require.Len(t, codecs, 2)
		require.Equal(t, "mp4a.40.2", codecs[1])
		require.Regexp(t, `^avc1\.64[0-9A-F]{4}$`, codecs[0])
		if i == 0 {
			vs := probe.videoStream(t)
			require.Equal(t, "High", vs.Profile)
			level, err := strconv.ParseUint(codecs[0][9:11], 16, 8)
			require.NoError(t, err)
			require.Equal(t, vs.Level, int(level), "CODECS level equals the stream's")
		}
	}

	// ffprobe reads the multivariant playlist with every variant and the audio.
	hls := ffprobeJSON(t, filepath.Join(b.dir, MultivariantName))
	require.Equal(t, "hls", hls.Format.FormatName)
	require.ElementsMatch(t, []string{"640x360", "320x180"}, hls.videoSizes())
	require.True(t, hls.hasAudio("aac"), "audio rendition read: %+v", hls.Streams)

	// ffprobe reads the MPD.
	dash := ffprobeJSON(t, filepath.Join(b.dir, ManifestName))
	require.Equal(t, "dash", dash.Format.FormatName)
	require.ElementsMatch(t, []string{"640x360", "320x180"}, dash.videoSizes())
	require.True(t, dash.hasAudio("aac"))
	require.InDelta(t, 12.0, dash.duration(t), 0.2)

	// The MPD as XML: static after the end, timelines equal the files on disk.
	m := readMPD(t, filepath.Join(b.dir, ManifestName))
	require.Equal(t, "static", m.Type)
	require.NotEmpty(t, m.MediaPresentationDuration)
	require.Len(t, m.Periods, 1)
	checkTimelines(t, b.dir, m, segsByTrack)

	st := b.p.Stats()
	require.Equal(t, 1, st.Runs)
	for _, ts := range st.Tracks {
		require.EqualValues(t, 6, ts.Segments, ts.Name)
		require.Zero(t, ts.Dropped, ts.Name)
		require.Positive(t, ts.LastWriteLatency, ts.Name)
	}
	t.Logf("multivariant playlist:\n%s", master)
	t.Logf("360p media playlist:\n%s", readFile(t, filepath.Join(b.dir, "360p", MediaPlaylistName)))
}

func TestPackagerLiveWindow(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{WindowSize: 3, ExtraSegments: 1})
	require.NoError(t, b.p.Tracks(c.video, c.audio))
	evs := c.interleaved(0)
	// Feed the first 9 s: segments 0-3 are complete, the fifth is open.
	cut := slices.IndexFunc(evs, func(e event) bool { return e.ts >= 9*time.Second })
	feed(t, b.p, evs[:cut])

	first := b.p.Stats().Tracks[0].MediaSequence
	for _, name := range []string{"360p", "180p", AudioName} {
		pl := readMediaPlaylist(t, filepath.Join(b.dir, name, MediaPlaylistName))
		require.False(t, pl.Closed)
		segs := playlistSegments(pl)
		require.Len(t, segs, 3, name)
		require.Equal(t, first, pl.SeqNo, name)
		require.Equal(t, strconv.FormatUint(pl.SeqNo, 10)+".m4s", segs[0].uri)
		onDisk := m4sNumbers(t, filepath.Join(b.dir, name))
		require.Len(t, onDisk, 4, "%s: window 3 + 1 extra on disk, got %v", name, onDisk)
		require.Equal(t, pl.SeqNo-1, onDisk[0], "%s: the extra segment is the one that just left the window", name)
	}

	m := readMPD(t, filepath.Join(b.dir, ManifestName))
	require.Equal(t, "dynamic", m.Type)
	require.Equal(t, "2026-11-21T12:00:00.000Z", m.AvailabilityStartTime)
	require.Equal(t, "PT2S", m.MinimumUpdatePeriod)
	require.Equal(t, "PT6S", m.TimeShiftBufferDepth)
	require.Equal(t, "PT6S", m.SuggestedPresentationDelay)
	require.Equal(t, "PT2S", m.MinBufferTime)
	require.NotEmpty(t, m.PublishTime)
	require.Len(t, m.UTCTiming, 1)
	require.Equal(t, "urn:mpeg:dash:utc:direct:2014", m.UTCTiming[0].Scheme)
	require.Len(t, m.Periods, 1)
	require.Equal(t, "PT0S", m.Periods[0].Start)
	for _, as := range m.Periods[0].AdaptationSets {
		require.Equal(t, "true", as.SegmentAlignment)
		require.Equal(t, "1", as.StartWithSAP)
		for _, rep := range as.Reps {
			entries := rep.ST.expand()
			require.Len(t, entries, 3, rep.ID)
			require.Equal(t, first, entries[0].number, rep.ID)
			require.Equal(t, "$RepresentationID$/$Number$.m4s", rep.ST.Media)
		}
	}
	// The segment numbers come from the wall clock: floor(unix time / 2 s).
	start := uint64(b.clock.Now().Unix() / 2)
	require.Equal(t, start+1, first)
	t.Logf("live MPD:\n%s", readFile(t, filepath.Join(b.dir, ManifestName)))

	// The rest of the stream, then the end.
	feed(t, b.p, evs[cut:])
	require.NoError(t, b.p.Close(true))
	pl := readMediaPlaylist(t, filepath.Join(b.dir, "360p", MediaPlaylistName))
	require.True(t, pl.Closed)
	require.Equal(t, start+3, pl.SeqNo)
	require.ErrorIs(t, b.p.WriteAudio(media.AudioFrame{PTS: time.Hour, Data: []byte{1}}), ErrClosed)
	require.ErrorIs(t, b.p.Tracks(c.video, c.audio), ErrClosed)
}
