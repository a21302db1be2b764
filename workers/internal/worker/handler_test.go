package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dionysia/dionysia/pkg/testkit"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/workers/internal/hwprobe"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testBundle is a handler wired to real Redis, the real GStreamer pipeline
// and the real packager, with the API side of the session-event contract
// recorded by an HTTP server.
type testBundle struct {
	handler  *Handler
	rdb      *redis.Client
	redisURL string // rdb's database, for child processes
	store    *ownership.Store
	stops    job.StopSignal
	events   *eventLog
	dataDir  string
}

type eventLog struct {
	mu         sync.Mutex
	events     []job.SessionEvent
	recordings []job.RecordingReport // accepted recording reports
	order      []string              // event types and "recording" / "recording-final", as they came
}

func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Type)
	}
	return out
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	// The CPU path's elements (hwprobe.CPU).
	testkit.GStreamer(t, hwprobe.ElemX264, hwprobe.ElemAVDecH264, hwprobe.ElemCPUScale, "h264parse", "avenc_aac", "appsink")
	r := testkit.RedisPrefix(t)
	rdb, prefix := r.Client, r.Prefix
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	events := &eventLog{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer worker-secret" {
			http.Error(w, "bad secret", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet {
			serveSource(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/recording") {
			serveRecording(w, r, events)
			return
		}
		var ev job.SessionEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || r.URL.Path != job.SessionEventPath(ev.SessionID) {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		events.mu.Lock()
		events.events = append(events.events, ev)
		events.order = append(events.order, ev.Type)
		events.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(api.Close)

	store := ownership.New(rdb, ownership.Config{Prefix: prefix, TTL: 3 * time.Second, Logger: log})
	stops := job.StopSignal{Redis: rdb, Prefix: prefix, PollInterval: 200 * time.Millisecond}
	dataDir := t.TempDir()
	h := &Handler{
		WorkerID:    "worker-a",
		OriginURL:   "http://127.0.0.1:1",
		DataDir:     dataDir,
		Ownership:   store,
		Stops:       stops,
		Reporter:    &Reporter{APIURL: api.URL, Secret: "worker-secret", Logger: log},
		Source:      (&Sources{APIURL: api.URL, Secret: "worker-secret"}).Fetch,
		Logger:      log,
		Retention:   time.Hour,
		SourceGrace: 500 * time.Millisecond,
		EndLinger:   200 * time.Millisecond,
	}
	h.Run = PipelineRunner(hwprobe.CPU(), nil, nil, h.thumbnails, log)
	return &testBundle{handler: h, rdb: rdb, redisURL: r.URL, store: store, stops: stops, events: events, dataDir: dataDir}
}

var (
	clipOnce sync.Once
	clip     string
	clipErr  error
)

// smallClip is a generated 4 s 640x360 H.264 + AAC file, so the real pipeline
// runs through it in a few seconds.
func smallClip(t *testing.T) string {
	t.Helper()
	ffmpeg := testkit.FFmpeg(t)
	clipOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dionysia-worker-test-")
		if err != nil {
			clipErr = err
			return
		}
		clip = filepath.Join(dir, "clip.mp4")
		out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-ac", "2", clip).CombinedOutput()
		if err != nil {
			clipErr = errors.New(string(out) + err.Error())
		}
	})
	require.NoError(t, clipErr)
	return clip
}

// liveSource starts a live SRT source, as the edge would serve one: ffmpeg
// loops the small clip in real time as an SRT listener until the test ends.
// It returns the URL the pipeline pulls.
func liveSource(t *testing.T) string {
	t.Helper()
	url, _ := stoppableSource(t)
	return url
}

// stoppableSource is liveSource with a function that stops it (a publisher
// leaving); it is stopped at the end of the test anyway.
func stoppableSource(t *testing.T) (string, func()) {
	t.Helper()
	addr := fmt.Sprintf("srt://127.0.0.1:%d", testkit.FreePort(t)) // free for UDP (SRT) too
	stop := srtListener(t, addr, "-stream_loop", "-1", "-i", smallClip(t), "-c", "copy")
	return addr + "?streamid=read:live/test", stop
}

// srtListener runs ffmpeg in real time with the input arguments given, as an
// MPEG-TS SRT listener on addr, and returns a function that stops it (the kit
// also kills it at cleanup).
func srtListener(t *testing.T, addr string, input ...string) func() {
	t.Helper()
	args := append(append([]string{"-re"}, input...), "-f", "mpegts", addr+"?mode=listener")
	p := testkit.StartFFmpeg(t, args...)
	return func() {
		if p.Running() {
			_ = p.Cmd.Process.Kill()
			_ = p.Wait(t, 30*time.Second)
		}
	}
}

// sources is the API side of job.SourcePath for the tests: session → what
// GET answers (a source URL, or an HTTP status for a session that is over or
// paused).
var (
	sources      sync.Map
	pausedServed atomic.Int64 // 503 answers given
)

type sourceAnswer struct {
	url    string
	status int
}

func serveSource(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/internal/v1/sessions/"), "/source"))
	if err != nil || r.URL.Path != job.SourcePath(id) {
		http.Error(w, "bad path", http.StatusNotFound)
		return
	}
	v, ok := sources.Load(id)
	if !ok {
		writeProblem(w, http.StatusNotFound, "no session with id "+id.String())
		return
	}
	a := v.(sourceAnswer)
	switch a.status {
	case 0:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(job.Source{URL: a.url}) // a file source takes no credential
	case http.StatusServiceUnavailable:
		pausedServed.Add(1)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, a.status, "publisher dropped; may resume")
	default:
		writeProblem(w, a.status, "session ended (publisher_disconnected)")
	}
}

// serveRecording is the API side of job.RecordingPath for the tests: it
// accepts every well-formed report and records it.
func serveRecording(w http.ResponseWriter, r *http.Request, events *eventLog) {
	var rep job.RecordingReport
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil || r.URL.Path != job.RecordingPath(rep.SessionID) {
		writeProblem(w, http.StatusBadRequest, fmt.Sprintf("bad report: %v", err))
		return
	}
	events.mu.Lock()
	events.recordings = append(events.recordings, rep)
	events.order = append(events.order, map[bool]string{false: "recording", true: "recording-final"}[rep.Final])
	events.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(job.RecordingAccepted{Accepted: len(rep.Objects)})
}

func (l *eventLog) recorded() []job.RecordingReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recordings)
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "detail": detail})
}

// payload is a task whose source (served by the tests' API) is source.
func payload(t *testing.T, source string) job.Transcode {
	t.Helper()
	r := func(name string, w, h, kbps int) ladder.Rendition {
		return ladder.Rendition{Name: name, Width: w, Height: h, VideoBitrateKbps: kbps, FrameRate: 30, Preset: "ultrafast"}
	}
	session := uuid.Must(uuid.NewV7())
	sources.Store(session, sourceAnswer{url: source})
	t.Cleanup(func() { sources.Delete(session) })
	return job.Transcode{
		StreamID:           uuid.Must(uuid.NewV7()),
		SessionID:          session,
		ProfileName:        "test",
		Ladder:             ladder.Ladder{Renditions: []ladder.Rendition{r("360p", 640, 360, 600), r("180p", 320, 180, 200)}}.WithDefaults(),
		Outputs:            []string{job.OutputHLS, job.OutputDASH},
		SegmentDuration:    2,
		PlaylistWindowSize: 6,
		Hardware:           job.HardwareCPU,
		PlaybackPolicy:     job.PolicyPublic,
	}
}

func task(t *testing.T, p job.Transcode) *asynq.Task {
	t.Helper()
	b, err := p.Marshal()
	require.NoError(t, err)
	return asynq.NewTask(job.TypeTranscode, b)
}

func TestHandlerTranscodesUntilTheSourceEnds(t *testing.T) {
	tb := setup(t)
	p := payload(t, "file://"+smallClip(t))
	var thumbsMu sync.Mutex
	var thumbs []media.Thumbnail
	tb.handler.OnThumbnail = func(streamID uuid.UUID, th media.Thumbnail) {
		assert.Equal(t, p.StreamID, streamID)
		thumbsMu.Lock()
		defer thumbsMu.Unlock()
		thumbs = append(thumbs, th)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	require.NoError(t, tb.handler.ProcessTask(ctx, task(t, p)))

	dir := filepath.Join(tb.dataDir, p.StreamID.String())
	for _, f := range []string{"index.m3u8", "manifest.mpd", "360p/index.m3u8", "180p/index.m3u8", "360p/init.mp4", "audio/init.mp4", "thumbnail.jpg"} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	thumbsMu.Lock()
	// The 4 s clip at the default 10 s interval: the first frame only.
	require.Len(t, thumbs, 1, "OnThumbnail is called after each thumbnail written")
	require.Equal(t, media.Thumbnail{Path: filepath.Join(dir, "thumbnail.jpg"), At: thumbs[0].At, Width: 640, Height: 360}, thumbs[0])
	thumbsMu.Unlock()
	media, err := os.ReadFile(filepath.Join(dir, "360p", "index.m3u8"))
	require.NoError(t, err)
	require.Contains(t, string(media), "#EXT-X-ENDLIST", "an ended session closes its playlists")
	mpd, err := os.ReadFile(filepath.Join(dir, "manifest.mpd"))
	require.NoError(t, err)
	require.Contains(t, string(mpd), `type="static"`)

	require.Equal(t, []string{job.EventStarted, job.EventFinished}, tb.events.types())
	_, held, err := tb.store.Lookup(ctx, p.StreamID.String())
	require.NoError(t, err)
	require.False(t, held, "the lease is released when the session ends")
	require.False(t, tb.handler.Holds(p.StreamID.String()))
	require.Zero(t, tb.handler.Load())
}

func TestHandlerDoesNotStartWhenAnotherWorkerOwnsTheStream(t *testing.T) {
	tb := setup(t)
	p := payload(t, "file://"+smallClip(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := tb.store.Acquire(ctx, p.StreamID.String(), p.SessionID.String(), ownership.Holder{WorkerID: "worker-b", OriginURL: "http://b"})
	require.NoError(t, err)

	require.NoError(t, tb.handler.ProcessTask(ctx, task(t, p)), "a fenced-out task completes without retry")

	require.NoDirExists(t, filepath.Join(tb.dataDir, p.StreamID.String()), "no output from a worker that does not own the stream")
	require.Empty(t, tb.events.types())
	owner, ok, err := tb.store.Lookup(ctx, p.StreamID.String())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "worker-b", owner.WorkerID)
	require.Equal(t, lease.Token, owner.Token)
}

func TestHandlerSkipsASessionAlreadyStopped(t *testing.T) {
	tb := setup(t)
	p := payload(t, "file://"+smallClip(t))
	ctx := context.Background()
	require.NoError(t, tb.stops.Request(ctx, p.SessionID, "publisher_disconnected"))

	require.NoError(t, tb.handler.ProcessTask(ctx, task(t, p)))
	require.NoDirExists(t, filepath.Join(tb.dataDir, p.StreamID.String()))
	require.Empty(t, tb.events.types())
}

func TestHandlerRejectsABadPayloadWithoutRetry(t *testing.T) {
	tb := setup(t)
	err := tb.handler.ProcessTask(context.Background(), asynq.NewTask(job.TypeTranscode, []byte(`{"stream_id":"nope"}`)))
	require.ErrorIs(t, err, asynq.SkipRetry)
	require.ErrorIs(t, err, job.ErrInvalidPayload)
}

func TestHandlerFailsABadSourceWithAReason(t *testing.T) {
	tb := setup(t)
	garbage := filepath.Join(t.TempDir(), "garbage.mp4")
	require.NoError(t, os.WriteFile(garbage, []byte(strings.Repeat("not a video ", 10_000)), 0o644))
	p := payload(t, "file://"+garbage)
	// An earlier session of the stream on this worker left its thumbnail.
	stale := filepath.Join(tb.dataDir, p.StreamID.String(), "thumbnail.jpg")
	require.NoError(t, os.MkdirAll(filepath.Dir(stale), 0o755))
	require.NoError(t, os.WriteFile(stale, []byte("an earlier session's frame"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	err := tb.handler.ProcessTask(ctx, task(t, p))
	require.ErrorIs(t, err, asynq.SkipRetry, "a source that cannot be transcoded is not retried")
	require.NoFileExists(t, stale, "a new session never shows an earlier session's thumbnail")
	types := tb.events.types()
	require.Equal(t, job.EventFailed, types[len(types)-1])
	tb.events.mu.Lock()
	reason := tb.events.events[len(tb.events.events)-1].Reason
	tb.events.mu.Unlock()
	require.NotEmpty(t, reason)
	t.Logf("failure reason on the session: %s", reason)
}

func TestHandlerStopsWhenTheSessionIsStopped(t *testing.T) {
	tb := setup(t)
	// A live source that never ends by itself, and a long grace: only the
	// stop request can end the session.
	p := payload(t, liveSource(t))
	tb.handler.SourceGrace = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tb.handler.ProcessTask(ctx, task(t, p)) }()

	require.Eventually(t, func() bool { return tb.handler.Holds(p.StreamID.String()) }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, tb.stops.Request(ctx, p.SessionID, "publisher_disconnected"))
	start := time.Now()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("handler did not stop after the stop request")
	}
	t.Logf("stopped %s after the request", time.Since(start).Round(time.Millisecond))
	tb.events.mu.Lock()
	last := tb.events.events[len(tb.events.events)-1]
	tb.events.mu.Unlock()
	require.Equal(t, job.EventFinished, last.Type)
	require.Equal(t, "publisher_disconnected", last.Reason)
}

// The task holds no source: the worker asks the API before every run. A
// session the API says is over is not started at all; one that ends while it
// runs (409 on the next run) is finished cleanly; a paused one (503) is
// waited for like an ended source, and a run pulls from where the session is
// now.
func TestHandlerFetchesTheSourceForEveryRun(t *testing.T) {
	tb := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	over := payload(t, "file://"+smallClip(t))
	sources.Store(over.SessionID, sourceAnswer{status: http.StatusConflict})
	require.NoError(t, tb.handler.ProcessTask(ctx, task(t, over)))
	require.NoDirExists(t, filepath.Join(tb.dataDir, over.StreamID.String()), "a session that is over is not started")
	require.Empty(t, tb.events.types())

	var runs sync.Map // source URL → true once a run pulled it
	run := tb.handler.Run
	tb.handler.Run = func(ctx context.Context, t job.Transcode, src job.Source, sink media.Sink) error {
		runs.Store(src.URL, true)
		return run(ctx, t, src, sink)
	}
	tb.handler.SourceGrace = time.Minute // only the API's answers end the session
	first, stopFirst := stoppableSource(t)
	p := payload(t, first)
	done := make(chan error, 1)
	go func() { done <- tb.handler.ProcessTask(ctx, task(t, p)) }()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(tb.dataDir, p.StreamID.String(), "index.m3u8"))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "the first source is transcoded")

	// The publisher drops: the API says "paused", and the handler keeps
	// asking without ending the session.
	paused := pausedServed.Load()
	sources.Store(p.SessionID, sourceAnswer{status: http.StatusServiceUnavailable})
	stopFirst()
	require.Eventually(t, func() bool { return pausedServed.Load() >= paused+2 }, 30*time.Second, 50*time.Millisecond,
		"the handler keeps asking while the source is paused")
	select {
	case err := <-done:
		t.Fatalf("a paused session ended: %v", err)
	default:
	}

	// The publisher is back on another edge: the next run pulls from there.
	moved, stopMoved := stoppableSource(t)
	sources.Store(p.SessionID, sourceAnswer{url: moved})
	require.Eventually(t, func() bool { _, ok := runs.Load(moved); return ok }, 30*time.Second, 20*time.Millisecond,
		"the next run pulls from the new source")

	// It leaves for good: the API says the session is over on the next run.
	sources.Store(p.SessionID, sourceAnswer{status: http.StatusConflict})
	stopMoved()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("the handler did not end the session the API says is over")
	}
	types := tb.events.types()
	require.Equal(t, job.EventStarted, types[0])
	require.Equal(t, job.EventFinished, types[len(types)-1])
	tb.events.mu.Lock()
	require.Equal(t, "session_over", tb.events.events[len(types)-1].Reason)
	tb.events.mu.Unlock()
	media, err := os.ReadFile(filepath.Join(tb.dataDir, p.StreamID.String(), "360p", "index.m3u8"))
	require.NoError(t, err)
	require.Contains(t, string(media), "#EXT-X-ENDLIST")
}

// A live source that looks permanently bad to one pull (here: no video yet)
// may be fine to the next: the session spends its restart budget instead of
// failing at once, and carries on when the publisher sends video. (A file
// that cannot be transcoded fails at once: TestHandlerFailsABadSourceWithAReason.)
func TestHandlerRetriesALiveSourceThatHadNoVideo(t *testing.T) {
	tb := setup(t)
	tb.handler.SourceGrace = time.Minute
	addr := fmt.Sprintf("srt://127.0.0.1:%d", testkit.FreePort(t))
	audioOnly := srtListener(t, addr, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac")
	p := payload(t, addr+"?streamid=read:live/test")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tb.handler.ProcessTask(ctx, task(t, p)) }()

	require.Eventually(t, func() bool { return slices.Contains(tb.events.types(), job.EventRestarted) }, 2*time.Minute,
		50*time.Millisecond, "the audio-only pull fails and is retried")
	require.NotContains(t, tb.events.types(), job.EventFailed, "a live source is not failed at its first try")
	audioOnly()
	srtListener(t, addr, "-stream_loop", "-1", "-i", smallClip(t), "-c", "copy")

	segments := filepath.Join(tb.dataDir, p.StreamID.String(), "360p")
	require.Eventually(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(segments, "*.m4s"))
		return len(m) > 0
	}, 2*time.Minute, 100*time.Millisecond, "segments once the publisher sends video")
	require.NoError(t, tb.stops.Request(ctx, p.SessionID, "publisher_disconnected"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("handler did not stop after the stop request")
	}
	types := tb.events.types()
	require.Equal(t, job.EventFinished, types[len(types)-1], "events: %v", types)
	require.NotContains(t, types, job.EventFailed)
}
