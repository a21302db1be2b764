package packager

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// historyOf is what a recording of the packager's files says (the worker
// builds the same from the API's list of recorded objects).
func historyOf(t *testing.T, ast time.Time, files []File) (History, map[string]string) {
	t.Helper()
	h := History{AvailabilityStart: ast}
	src := map[string]string{} // HistoryFile path -> file of the old owner, for one run
	tracks := map[string]*HistoryTrack{}
	var order []string
	for _, f := range files {
		require.Zero(t, f.Run, "one run")
		if f.Kind == FileInit {
			tracks[f.Rendition] = &HistoryTrack{Rendition: f.Rendition, Audio: f.Track.Audio, Timescale: f.Track.Timescale,
				Codec: f.Track.Codec, Width: f.Track.Width, Height: f.Track.Height, FrameRate: f.Track.FrameRate,
				Bandwidth: f.Track.Bandwidth, SampleRate: f.Track.SampleRate, Channels: f.Track.Channels}
			order = append(order, f.Rendition)
			src[filepath.Join(f.Rendition, "init-h0.mp4")] = f.Path
			continue
		}
		tr := tracks[f.Rendition]
		tr.Segments = append(tr.Segments, HistorySegment{Number: f.Number, MediaStart: f.MediaStart,
			Duration: uint64(math.Round(f.Duration.Seconds() * float64(f.Timescale))), Size: int(f.Size)})
		src[filepath.Join(f.Rendition, strconv.FormatUint(f.Number, 10)+".m4s")] = f.Path
	}
	var run HistoryRun
	for _, name := range order {
		run.Tracks = append(run.Tracks, *tracks[name])
	}
	h.Runs = []HistoryRun{run}
	return h, src
}

func TestPackagerResume(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	names := []string{"360p", "180p", AudioName}

	// The old owner packages 12 s and dies (its playlists stay open).
	type owner struct {
		b     *testBundle
		h     History
		src   map[string]string
		first uint64 // its first segment number
	}
	old := func(t *testing.T) owner {
		log := &fileLog{t: t}
		b := setup(t, Config{WindowSize: 20, OnFile: log.add})
		require.NoError(t, b.p.Tracks(c.video, c.audio))
		feed(t, b.p, c.interleaved(0))
		require.NoError(t, b.p.Close(false))
		h, src := historyOf(t, newFakeClock().Now(), log.files)
		return owner{b: b, h: h, src: src, first: h.Runs[0].Tracks[0].Segments[0].Number}
	}

	// The new owner starts 15 s after the session's availabilityStartTime.
	resume := func(t *testing.T, o owner, skip string) *testBundle {
		b := setup(t, Config{WindowSize: 20})
		b.clock.Advance(15 * time.Second)
		files, err := b.p.Resume(o.h)
		require.NoError(t, err)
		require.Len(t, files, len(o.src))
		for _, f := range files {
			if f.Path == skip {
				continue
			}
			data, err := os.ReadFile(o.src[f.Path])
			require.NoError(t, err, f.Path)
			require.NoError(t, os.MkdirAll(filepath.Join(b.dir, filepath.Dir(f.Path)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(b.dir, f.Path), data, 0o644))
		}
		require.NoError(t, b.p.Tracks(c.video, c.audio))
		feed(t, b.p, c.interleaved(0)[:len(c.interleaved(0))/2])
		require.NoFileExists(t, filepath.Join(b.dir, "360p", MediaPlaylistName), "nothing is published before Release")
		require.NoFileExists(t, filepath.Join(b.dir, ManifestName))
		require.NoError(t, b.p.Release())
		feed(t, b.p, c.interleaved(0)[len(c.interleaved(0))/2:])
		require.NoError(t, b.p.Close(false))
		require.Equal(t, 1, b.p.Stats().Runs, "the history's runs are not this packager's")
		return b
	}

	t.Run("whole window", func(t *testing.T) {
		t.Parallel()
		o := old(t)
		b := resume(t, o, "")
		wall := uint64(newFakeClock().Now().Add(15*time.Second).Unix() / 2)
		for _, name := range names {
			pl := readMediaPlaylist(t, filepath.Join(b.dir, name, MediaPlaylistName))
			segs := playlistSegments(pl)
			require.Len(t, segs, 12, "%s: the old owner's 6 segments, then 6 of its own", name)
			require.Equal(t, wall-6, pl.SeqNo, "%s: media sequence numbers run on into its own segments", name)
			oldPl := readMediaPlaylist(t, filepath.Join(o.b.dir, name, MediaPlaylistName))
			for i, s := range segs {
				require.Equal(t, i == 6, s.discontinuity, "%s segment %d", name, i)
				if i < 6 {
					want := playlistSegments(oldPl)[i]
					require.Equal(t, want.uri, s.uri, "%s: history keeps its file names", name)
					require.Equal(t, want.pdt, s.pdt, "%s: and its program date times", name)
					require.Equal(t, "init-h0.mp4", s.mapURI)
					require.FileExists(t, filepath.Join(b.dir, name, s.uri))
				} else {
					require.Equal(t, strconv.FormatUint(wall+uint64(i-6), 10)+".m4s", s.uri,
						"%s: its own segments are numbered from the wall clock, past the history", name)
				}
			}
			require.Equal(t, newFakeClock().Now().Add(15*time.Second), segs[6].pdt.UTC(), name)
		}
		m := readMPD(t, filepath.Join(b.dir, ManifestName))
		require.Equal(t, "dynamic", m.Type)
		require.Equal(t, readMPD(t, filepath.Join(o.b.dir, ManifestName)).AvailabilityStartTime, m.AvailabilityStartTime, "the same availabilityStartTime")
		require.Len(t, m.Periods, 2)
		require.Equal(t, "PT15S", m.Periods[1].Start)
		for _, as := range m.Periods[0].AdaptationSets {
			for _, rep := range as.Reps {
				require.Equal(t, "$RepresentationID$/init-h0.mp4", rep.ST.Init)
				require.Equal(t, o.first, rep.ST.StartNumber, rep.ID)
				require.Len(t, rep.ST.expand(), 6, rep.ID)
			}
		}
		// ffmpeg reads the resumed window across the discontinuity.
		require.True(t, ffprobeJSON(t, filepath.Join(b.dir, MultivariantName)).hasAudio("aac"))
	})

	t.Run("a missing file cuts the history", func(t *testing.T) {
		t.Parallel()
		o := old(t)
		b := resume(t, o, filepath.Join("180p", strconv.FormatUint(o.first+2, 10)+".m4s"))
		for _, name := range names {
			segs := playlistSegments(readMediaPlaylist(t, filepath.Join(b.dir, name, MediaPlaylistName)))
			require.Len(t, segs, 3+6, "%s: only what follows the missing segment, in every rendition", name)
			require.Equal(t, strconv.FormatUint(o.first+3, 10)+".m4s", segs[0].uri, name)
			require.False(t, segs[0].discontinuity, name)
			require.True(t, segs[3].discontinuity, name)
			require.NoFileExists(t, filepath.Join(b.dir, name, strconv.FormatUint(o.first+1, 10)+".m4s"), "%s: dropped history is deleted", name)
		}
	})

	t.Run("refused after the first run", func(t *testing.T) {
		t.Parallel()
		o := old(t)
		b := setup(t, Config{})
		require.NoError(t, b.p.Tracks(c.video, c.audio))
		_, err := b.p.Resume(o.h)
		require.ErrorIs(t, err, ErrResumeLate)
		bad := o.h
		bad.Runs = []HistoryRun{{Tracks: []HistoryTrack{o.h.Runs[0].Tracks[0], o.h.Runs[0].Tracks[1]}}}
		bad.Runs[0].Tracks[1].Segments = bad.Runs[0].Tracks[1].Segments[1:]
		_, err = setup(t, Config{}).p.Resume(bad)
		require.ErrorContains(t, err, "different segment counts")
		require.True(t, strings.HasPrefix(err.Error(), "resuming:"))
	})
}
