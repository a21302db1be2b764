package packager

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fileLog records what OnFile was given, and checks each file is on disk
// when it is announced.
type fileLog struct {
	t     *testing.T
	mu    sync.Mutex
	files []File
}

func (l *fileLog) add(f File) {
	st, err := os.Stat(f.Path)
	require.NoError(l.t, err, "%s is on disk when announced", f)
	require.Equal(l.t, f.Size, st.Size(), "%s size", f)
	l.mu.Lock()
	l.files = append(l.files, f)
	l.mu.Unlock()
}

func TestPackagerOnFile(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	log := &fileLog{t: t}
	b := setup(t, Config{WindowSize: 20, OnFile: log.add})
	require.NoError(t, b.p.Tracks(c.video, c.audio))
	feed(t, b.p, c.interleaved(0))
	require.NoError(t, b.p.Close(true))

	inits := map[string]File{}
	segs := map[string][]File{}
	for _, f := range log.files {
		switch f.Kind {
		case FileInit:
			require.NotContains(t, inits, f.Rendition, "one header per track and run")
			require.Empty(t, segs[f.Rendition], "%s: the header comes before the track's first segment", f.Rendition)
			inits[f.Rendition] = f
		case FileSegment:
			segs[f.Rendition] = append(segs[f.Rendition], f)
		default:
			t.Fatalf("unknown kind %q", f.Kind)
		}
	}
	require.Len(t, inits, 3)
	v := inits["360p"].Track
	require.False(t, v.Audio)
	require.True(t, strings.HasPrefix(v.Codec, "avc1."), v.Codec)
	require.Equal(t, uint32(videoTimescale), v.Timescale)
	require.Equal(t, 640, v.Width)
	require.Equal(t, 360, v.Height)
	require.Equal(t, "30", v.FrameRate)
	require.Positive(t, v.Bandwidth)
	a := inits[AudioName].Track
	require.True(t, a.Audio)
	require.Equal(t, "mp4a.40.2", a.Codec)
	require.Equal(t, 48000, a.SampleRate)
	require.Equal(t, uint32(48000), a.Timescale)
	require.Equal(t, 2, a.Channels)

	for _, name := range []string{"360p", "180p", AudioName} {
		listed := playlistSegments(readMediaPlaylist(t, filepath.Join(b.dir, name, MediaPlaylistName)))
		got := segs[name]
		require.Len(t, got, len(listed), name)
		for i, f := range got {
			require.Equal(t, listed[i].uri, strconv.FormatUint(f.Number, 10)+".m4s", "%s segment %d", name, i)
			require.Equal(t, filepath.Join(b.dir, name, listed[i].uri), f.Path)
			require.Equal(t, "init.mp4", f.Init)
			require.Equal(t, 0, f.Run)
			require.True(t, listed[i].pdt.Equal(f.Start), "%s segment %d: Start %s is the PROGRAM-DATE-TIME %s", name, i, f.Start, listed[i].pdt)
			require.InDelta(t, listed[i].dur, f.Duration.Seconds(), 0.0005, "%s segment %d duration", name, i)
			info := inspectSegment(t, f.Path, filepath.Join(b.dir, name, "init.mp4"))
			require.InDelta(t, info.start, float64(f.MediaStart)/float64(f.Timescale), 1e-9, "%s segment %d: MediaStart is the tfdt", name, i)
			if i > 0 {
				require.Equal(t, got[i-1].Number+1, f.Number)
			}
		}
	}
}

// RFC 8216 §6.2.2: a segment that left the playlist stays available for its
// duration plus the playlist's duration. With the default ExtraSegments, each
// segment's file outlives its last listing by at least that much media time
// (one segment is cut per segment duration of a live stream).
func TestPackagerKeepsRemovedSegmentsAvailable(t *testing.T) {
	t.Parallel()
	c := loadContent(t, contentSpec{seconds: 30, fps: 30, gop: 60, bframes: 2, big: "640x360", small: "320x180", audioHz: 48000})
	const window = 3
	type life struct {
		dur        time.Duration // the segment's duration
		playlist   time.Duration // duration of the last playlist listing it
		left, gone time.Duration // media time it left the playlist, and its file vanished
	}
	lives := map[uint64]*life{}
	var dir string
	check := func(f File) {
		if f.Kind != FileSegment || f.Rendition != "360p" {
			return
		}
		now := time.Duration(f.MediaStart)*time.Second/time.Duration(f.Timescale) + f.Duration
		listed := playlistSegments(readMediaPlaylist(t, filepath.Join(dir, "360p", MediaPlaylistName)))
		var plDur time.Duration
		in := map[uint64]bool{}
		for _, s := range listed {
			n, err := strconv.ParseUint(strings.TrimSuffix(s.uri, ".m4s"), 10, 64)
			require.NoError(t, err)
			in[n] = true
			plDur += time.Duration(s.dur * float64(time.Second))
		}
		onDisk := map[uint64]bool{}
		for _, n := range m4sNumbers(t, filepath.Join(dir, "360p")) {
			onDisk[n] = true
		}
		lives[f.Number] = &life{dur: f.Duration}
		for n, l := range lives {
			switch {
			case in[n]:
				l.playlist = plDur
			case l.left == 0:
				l.left = now
			}
			if !onDisk[n] && l.gone == 0 {
				l.gone = now
			}
		}
	}
	b := setup(t, Config{WindowSize: window, OnFile: func(f File) { check(f) }})
	dir = b.dir
	require.NoError(t, b.p.Tracks(c.video, c.audio))
	feed(t, b.p, c.interleaved(0))
	require.NoError(t, b.p.Close(true))

	removed := 0
	for n, l := range lives {
		if l.gone == 0 {
			continue
		}
		removed++
		require.NotZero(t, l.left, "segment %d was removed before it left the playlist", n)
		require.GreaterOrEqual(t, l.gone-l.left, l.dur+l.playlist-time.Millisecond,
			"segment %d: on disk %s after it left the playlist, needs %s + %s", n, l.gone-l.left, l.dur, l.playlist)
	}
	require.GreaterOrEqual(t, removed, 3, "the test saw segments removed")
	onDisk := m4sNumbers(t, filepath.Join(b.dir, "360p"))
	require.Len(t, onDisk, window+window+1, "the disk stays bounded: the window plus WindowSize+1 segments")
}
