package packager

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/workers/internal/media"
)

// renamed returns the content's video tracks under the given names.
func renamed(c *testContent, names ...string) []media.VideoTrack {
	out := slices.Clone(c.video)
	for i := range out {
		out[i].Name = names[i]
	}
	return out
}

func TestPackagerRestart(t *testing.T) {
	t.Parallel()
	c1 := loadContent(t, defaultSpec)
	// The second run's top rendition has another size: its CMAF header changes.
	c2 := loadContent(t, contentSpec{seconds: 12, fps: 30, gop: 60, bframes: 2, big: "480x270", small: "320x180", audioHz: 48000})

	run := func(t *testing.T, window int, outage time.Duration) *testBundle {
		b := setup(t, Config{WindowSize: window, ExtraSegments: 2})
		require.NoError(t, b.p.Tracks(renamed(c1, "360p", "180p"), c1.audio))
		evs := c1.interleaved(0)
		feed(t, b.p, evs[:slices.IndexFunc(evs, func(e event) bool { return e.ts >= 7*time.Second })])
		// The pipeline restarts (10 s after the session started by default);
		// its running time starts from zero again.
		b.clock.Advance(outage)
		require.NoError(t, b.p.Tracks(renamed(c2, "360p", "180p"), c2.audio))
		feed(t, b.p, c2.interleaved(0))
		require.NoError(t, b.p.Close(true))
		require.Equal(t, 2, b.p.Stats().Runs)
		return b
	}

	t.Run("whole session listed", func(t *testing.T) {
		t.Parallel()
		b := run(t, 20, 10*time.Second)
		n0 := uint64(newFakeClock().Now().Unix() / 2)
		for _, name := range []string{"360p", "180p", AudioName} {
			segs := playlistSegments(readMediaPlaylist(t, filepath.Join(b.dir, name, MediaPlaylistName)))
			require.Len(t, segs, 10, "%s: 4 segments before the restart (the last one flushed short), 6 after", name)
			raw := readFile(t, filepath.Join(b.dir, name, MediaPlaylistName))
			require.Equal(t, 1, strings.Count(raw, "#EXT-X-DISCONTINUITY\n"), name)
			require.NotContains(t, raw, "#EXT-X-DISCONTINUITY-SEQUENCE", name)
			for i, s := range segs {
				require.Equal(t, i == 4, s.discontinuity, "%s segment %d", name, i)
				require.Equal(t, n0+uint64(i), atoi64(t, strings.TrimSuffix(s.uri, ".m4s")), "numbers continue across the restart")
			}
			require.InDelta(t, 1.0, segs[3].dur, 0.15, "%s: the run's last segment was flushed at 7 s", name)
			// The new run starts on the wall clock: 10 s after availabilityStartTime.
			require.Equal(t, newFakeClock().Now().Add(10*time.Second), segs[4].pdt.UTC(), name)
			wantInit := "init.mp4"
			if name == "360p" {
				wantInit = "init-1.mp4"
				require.Contains(t, raw, `#EXT-X-MAP:URI="init-1.mp4"`)
			}
			require.Equal(t, "init.mp4", segs[3].mapURI, name)
			require.Equal(t, wantInit, segs[4].mapURI, name)
			info := inspectSegment(t, filepath.Join(b.dir, name, segs[4].uri), filepath.Join(b.dir, name, segs[4].mapURI))
			require.InDelta(t, 10.0, info.start, 0.03, "%s: decode times continue on the session timeline", name)
		}

		m := readMPD(t, filepath.Join(b.dir, ManifestName))
		require.Equal(t, "static", m.Type)
		require.Len(t, m.Periods, 2)
		require.Equal(t, "0", m.Periods[0].ID)
		require.Equal(t, "1", m.Periods[1].ID)
		require.Equal(t, "PT0S", m.Periods[0].Start)
		require.Equal(t, "PT10S", m.Periods[1].Start)
		for pi, per := range m.Periods {
			for _, as := range per.AdaptationSets {
				for _, rep := range as.Reps {
					es := rep.ST.expand()
					want := 4
					if pi == 1 {
						want = 6
						require.Equal(t, uint64(10*rep.ST.Timescale), rep.ST.PTO, rep.ID)
						if rep.ID == "360p" {
							require.Equal(t, "$RepresentationID$/init-1.mp4", rep.ST.Init)
						}
					}
					require.Len(t, es, want, "period %d %s", pi, rep.ID)
					require.GreaterOrEqual(t, es[0].t, rep.ST.PTO)
				}
			}
		}
		// ffmpeg reads the playlists across the discontinuity.
		hls := ffprobeJSON(t, filepath.Join(b.dir, MultivariantName))
		require.Equal(t, "hls", hls.Format.FormatName)
		require.True(t, hls.hasAudio("aac"))
		mp := readMasterPlaylist(t, filepath.Join(b.dir, MultivariantName))
		require.Equal(t, "480x270", mp.Variants[0].Resolution, "the multivariant playlist describes the current run")
		t.Logf("360p media playlist after a restart:\n%s", readFile(t, filepath.Join(b.dir, "360p", MediaPlaylistName)))
	})

	t.Run("discontinuity slid out", func(t *testing.T) {
		t.Parallel()
		b := run(t, 3, 10*time.Second)
		for _, name := range []string{"360p", "180p", AudioName} {
			raw := readFile(t, filepath.Join(b.dir, name, MediaPlaylistName))
			require.NotContains(t, raw, "#EXT-X-DISCONTINUITY\n", name)
			require.Contains(t, raw, "#EXT-X-DISCONTINUITY-SEQUENCE:1\n", name)
			require.Len(t, m4sNumbers(t, filepath.Join(b.dir, name)), 3+2, name)
		}
		// No kept segment needs the first run's 360p header any more.
		require.NoFileExists(t, filepath.Join(b.dir, "360p", "init.mp4"))
		require.FileExists(t, filepath.Join(b.dir, "360p", "init-1.mp4"))
		m := readMPD(t, filepath.Join(b.dir, ManifestName))
		require.Len(t, m.Periods, 1, "the first period left the window")
		require.Equal(t, "1", m.Periods[0].ID)
		require.Equal(t, "PT0S", m.Periods[0].Start, "a static MPD starts at its first listed segment")
	})
}

func TestPackagerShortRestartIsContiguous(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{WindowSize: 20})
	require.NoError(t, b.p.Tracks(c.video, c.audio))
	evs := c.interleaved(0)
	feed(t, b.p, evs[:slices.IndexFunc(evs, func(e event) bool { return e.ts >= 7*time.Second })])
	b.clock.Advance(7500 * time.Millisecond) // restarted within a segment duration of the media's end
	require.NoError(t, b.p.Tracks(c.video, c.audio))
	feed(t, b.p, c.interleaved(0))
	require.NoError(t, b.p.Close(false))

	m := readMPD(t, filepath.Join(b.dir, ManifestName))
	require.Equal(t, "dynamic", m.Type)
	require.Len(t, m.Periods, 2)
	for _, as := range m.Periods[0].AdaptationSets {
		if as.ContentType != "video" {
			continue
		}
		for i, rep := range as.Reps {
			es := rep.ST.expand()
			last := es[len(es)-1]
			end := float64(last.t+last.d) / float64(rep.ST.Timescale)
			start := m.Periods[1].AdaptationSets[0].Reps[i].ST
			require.Equal(t, m.Periods[1].AdaptationSets[0].Reps[i].ST.expand()[0].t, start.PTO)
			require.InDelta(t, end, float64(start.PTO)/float64(start.Timescale), 1e-4,
				"%s: the second period starts where the first one's video ended", rep.ID)
		}
	}
	segs := playlistSegments(readMediaPlaylist(t, filepath.Join(b.dir, "360p", MediaPlaylistName)))
	require.True(t, segs[4].discontinuity)
	require.Equal(t, segs[3].pdt.Add(time.Duration(segs[3].dur*float64(time.Second))).Round(time.Millisecond), segs[4].pdt)
}

func atoi64(t *testing.T, s string) uint64 {
	t.Helper()
	return uint64(atoi(t, s))
}

// TestPackagerConcurrentWriters feeds every track from its own goroutine, as
// GStreamer's streaming threads do, and expects exactly the files a
// sequential, time-ordered feed produces. Run with -race.
func TestPackagerConcurrentWriters(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)

	seq := setup(t, Config{})
	require.NoError(t, seq.p.Tracks(c.video, c.audio))
	feed(t, seq.p, c.interleaved(0))
	require.NoError(t, seq.p.Close(true))

	con := setup(t, Config{})
	require.NoError(t, con.p.Tracks(c.video, c.audio))
	var wg sync.WaitGroup
	errs := make(chan error, len(c.vAUs)+1)
	for i, aus := range c.vAUs {
		wg.Go(func() {
			for _, au := range aus {
				if err := con.p.WriteVideo(i, au); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for _, f := range c.frames {
			if err := con.p.WriteAudio(f); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() { // a metrics scraper
		for range 50 {
			_ = con.p.Stats()
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, con.p.Close(true))

	want, got := treeOf(t, seq.dir), treeOf(t, con.dir)
	require.Equal(t, keysOf(want), keysOf(got))
	for name, data := range want {
		require.Equal(t, data, got[name], name)
	}
}

func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		out[rel] = string(b)
		return err
	}))
	return out
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// A worker that lost a stream and got it back starts a new packager on the
// directory of its earlier one. When the new run ends before any output (the
// publisher left meanwhile), the earlier playlists, which players are
// watching, still end.
func TestPackagerEndsAnEarlierPackagersPlaylists(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{})
	require.NoError(t, b.p.Tracks(c.video, c.audio))
	feed(t, b.p, c.interleaved(0))
	require.NoError(t, b.p.Close(false), "the earlier packager lost the stream: its playlists stay open")
	media := filepath.Join(b.dir, "360p", MediaPlaylistName)
	before, err := os.ReadFile(media)
	require.NoError(t, err)
	require.NotContains(t, string(before), "#EXT-X-ENDLIST")
	segs := playlistSegments(readMediaPlaylist(t, media))

	again, err := New(Config{Dir: b.dir, Logger: b.p.log})
	require.NoError(t, err)
	require.NoError(t, again.Close(true), "the new run ended without tracks")
	after, err := os.ReadFile(media)
	require.NoError(t, err)
	require.Equal(t, strings.TrimRight(string(before), "\n")+"\n#EXT-X-ENDLIST\n", string(after))
	ended := readMediaPlaylist(t, media)
	require.True(t, ended.Closed, "the playlist parses as ended")
	require.Equal(t, segs, playlistSegments(ended), "the same segments, now ended")
	require.NoError(t, again.Close(true), "closing twice is harmless")
}
