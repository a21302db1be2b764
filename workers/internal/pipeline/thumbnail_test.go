package pipeline

import (
	"bytes"
	"context"
	"image/jpeg"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/workers/internal/media"
)

// thumbnailLog collects what OnThumbnail is called with, and the file's
// content at each call.
type thumbnailLog struct {
	mu    sync.Mutex
	calls []media.Thumbnail
	data  [][]byte
}

func (l *thumbnailLog) on(th media.Thumbnail) {
	b, err := os.ReadFile(th.Path)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		b = nil // the file must exist when the callback runs: checked below
	}
	l.calls = append(l.calls, th)
	l.data = append(l.data, b)
}

func (l *thumbnailLog) snapshot() ([]media.Thumbnail, [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]media.Thumbnail(nil), l.calls...), append([][]byte(nil), l.data...)
}

// decodeJPEG decodes b as a JPEG (stdlib) and returns its size.
func decodeJPEG(t *testing.T, b []byte) (int, int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	require.NoError(t, err, "the thumbnail decodes as a JPEG")
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// clip1080p10 is a generated 1920x1080 clip at 10 fps (cheap to decode in
// real time), with stereo audio, as an RTMP publisher would send it.
func clip1080p10(t *testing.T) string {
	return generate(t, "gen1080p10.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=10:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2")
}

// TestThumbnailsLive pulls a live 1080p stream from a real mediamtx with a
// 1 s thumbnail interval: thumbnail.jpg appears, is a 1280x720 JPEG, changes
// as the stream plays, and OnThumbnail is called after each write with
// increasing times, while the rendition keeps encoding every frame.
func TestThumbnailsLive(t *testing.T) {
	e := startMediaMTX(t)
	publish(t, e, clip1080p10(t), "live/thumbs")
	dir := t.TempDir()
	var log thumbnailLog
	sink := newRecordingSink(t)
	lad := ladder.Ladder{Renditions: []ladder.Rendition{
		{Name: "180p", Width: 320, Height: 180, VideoBitrateKbps: 200, FrameRate: 10, Preset: "ultrafast"},
	}}
	p, err := New(Config{StreamID: "thumbs", Ladder: lad, SegmentDuration: 2 * time.Second, EncoderThreads: 1,
		Logger: testLogger(t), Source: job.Source{URL: e.rtmpURL("live/thumbs"), User: "reader", Password: "secret"},
		ThumbnailInterval: time.Second, ThumbnailDir: dir, OnThumbnail: log.on})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, sink) }()

	path := filepath.Join(dir, ThumbnailFile)
	require.Eventually(t, func() bool { _, err := os.Stat(path); return err == nil }, 2*time.Minute, 50*time.Millisecond,
		"thumbnail.jpg appears")
	first, err := os.ReadFile(path)
	require.NoError(t, err)
	w, h := decodeJPEG(t, first)
	require.Equal(t, [2]int{1280, 720}, [2]int{w, h}, "1920x1080 scaled to 1280 wide, aspect kept")

	// A second read at least 1 s later holds another frame.
	time.Sleep(1100 * time.Millisecond)
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && !bytes.Equal(b, first)
	}, time.Minute, 100*time.Millisecond, "the thumbnail changes as the stream plays")
	require.Eventually(t, func() bool { calls, _ := log.snapshot(); return len(calls) >= 4 }, 2*time.Minute, 100*time.Millisecond,
		"a thumbnail about every second")
	require.Positive(t, sink.frames(0))
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancel")
	}

	calls, data := log.snapshot()
	for i, th := range calls {
		require.Equal(t, path, th.Path)
		require.Equal(t, [2]int{1280, 720}, [2]int{th.Width, th.Height})
		require.NotNil(t, data[i], "thumbnail %d exists when OnThumbnail is called", i)
		w, h := decodeJPEG(t, data[i])
		require.Equal(t, [2]int{th.Width, th.Height}, [2]int{w, h})
		if i > 0 {
			require.True(t, th.At.After(calls[i-1].At), "At increases: %s then %s", calls[i-1].At, th.At)
			// One frame per second of stream time, at most: a live
			// stream comes in real time (loose bound: a loaded machine
			// delivers frames in bursts).
			require.Greater(t, th.At.Sub(calls[i-1].At), 300*time.Millisecond, "thumbnails %d and %d", i-1, i)
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only thumbnail.jpg is left (no temporary file): %v", entries)
}

// TestThumbnailsFile: a file source with a long interval gets exactly one
// thumbnail, its first frame, at the source's size (narrower than 1280);
// interval 0 writes none.
func TestThumbnailsFile(t *testing.T) {
	t.Run("first frame", func(t *testing.T) {
		dir := t.TempDir()
		var log thumbnailLog
		sink := newRecordingSink(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, Run(ctx, Config{Source: fileSource(clipTiny(t)), Ladder: builtin(t, ladder.BuiltinPassthrough),
			Logger: testLogger(t), ThumbnailInterval: time.Hour, ThumbnailDir: dir, OnThumbnail: log.on}, sink))
		calls, data := log.snapshot()
		require.Len(t, calls, 1, "the first frame only")
		require.Equal(t, media.Thumbnail{Path: filepath.Join(dir, ThumbnailFile), At: calls[0].At, Width: 320, Height: 180}, calls[0])
		require.False(t, calls[0].At.IsZero())
		w, h := decodeJPEG(t, data[0])
		require.Equal(t, [2]int{320, 180}, [2]int{w, h})
		require.Equal(t, 60, sink.count[0], "the renditions got every frame")
	})
	t.Run("off", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sink := newRecordingSink(t)
		require.NoError(t, Run(ctx, Config{Source: fileSource(clipTiny(t)), Ladder: builtin(t, ladder.BuiltinPassthrough),
			Logger: testLogger(t), ThumbnailInterval: 0, ThumbnailDir: dir,
			OnThumbnail: func(media.Thumbnail) { t.Error("OnThumbnail called with thumbnails off") }}, sink))
		require.Equal(t, 60, sink.count[0])
		require.NoFileExists(t, filepath.Join(dir, ThumbnailFile))
	})
	t.Run("config", func(t *testing.T) {
		lad := builtin(t, ladder.BuiltinPassthrough)
		_, err := New(Config{Source: fileSource(clipTiny(t)), Ladder: lad, ThumbnailInterval: time.Second})
		require.ErrorContains(t, err, "ThumbnailDir")
		_, err = New(Config{Source: fileSource(clipTiny(t)), Ladder: lad, ThumbnailInterval: -time.Second, ThumbnailDir: t.TempDir()})
		require.ErrorContains(t, err, "thumbnail interval")
	})
}

func TestThumbnailSize(t *testing.T) {
	for _, tc := range []struct{ w, h, tw, th int }{
		{1920, 1080, 1280, 720},
		{1280, 720, 1280, 720},
		{640, 360, 640, 360},
		{3840, 2160, 1280, 720},
		{1080, 1920, 1080, 1920}, // portrait: width-capped only
		{1440, 1080, 1280, 960},
		{321, 181, 320, 180},
		{0, 0, 0, 0},
	} {
		tw, th := thumbnailSize(tc.w, tc.h)
		require.Equal(t, [2]int{tc.tw, tc.th}, [2]int{tw, th}, "%dx%d", tc.w, tc.h)
	}
}

func TestThumbnailKeep(t *testing.T) {
	th := newThumbnailer(nil, "", time.Second, nil)
	now := time.Now()
	s := time.Second
	ms := time.Millisecond
	for i, tc := range []struct {
		pts  time.Duration
		wall time.Duration
		keep bool
	}{
		{5 * s, 0, true},                // the first frame, whatever its time
		{5*s + 33*ms, 0, false},         // too soon
		{5*s + 999*ms, 0, false},        // still too soon
		{6 * s, 0, true},                // one interval later
		{6*s + 500*ms, 0, false},        // too soon
		{2 * s, 0, true},                // time went back: a new segment
		{2*s + 500*ms, 0, false},        // counted from there
		{3*s + 100*ms, 0, true},         // the first frame past the interval
		{-1, 200 * ms, false},           // no timestamp: spaced by the wall clock
		{-1, 1500 * ms, true},           //
		{4*s + 200*ms, 1600 * ms, true}, // a timestamp again: due since 4.1 s
	} {
		require.Equal(t, tc.keep, th.keep(tc.pts, now.Add(tc.wall)), "frame %d at %s", i, tc.pts)
	}
}
