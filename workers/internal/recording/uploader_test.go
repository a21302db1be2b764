package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/packager"
)

const secret = "test-worker-secret"

// api is the API's side of the recording contract (pkg/job/recording.go):
// it checks every report and records the accepted ones. answer gives the
// status of the nth attempt (from 1); nil answers 200.
type api struct {
	t        *testing.T
	rec      *recordingIDs
	answer   func(n int) int
	mu       sync.Mutex
	attempts int
	accepted []job.RecordingReport
	srv      *httptest.Server
}

type recordingIDs struct {
	stream, session, asset uuid.UUID
	lease                  ownership.Lease
}

func newAPI(t *testing.T, ids *recordingIDs, answer func(n int) int) *api {
	a := &api{t: t, rec: ids, answer: answer}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "detail": detail})
}

func (a *api) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != job.RecordingPath(a.rec.session) {
		problem(w, http.StatusNotFound, "no such endpoint "+r.Method+" "+r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+secret || r.Header.Get("Content-Type") != "application/json" {
		problem(w, http.StatusUnauthorized, "bad secret or content type")
		return
	}
	var rep job.RecordingReport
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		problem(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if rep.StreamID != a.rec.stream || rep.SessionID != a.rec.session || rep.AssetID != a.rec.asset ||
		rep.WorkerID != "worker-a" || rep.Token != a.rec.lease.Token || rep.Nonce != a.rec.lease.Nonce {
		problem(w, http.StatusBadRequest, fmt.Sprintf("ids do not match: %+v", rep))
		return
	}
	a.mu.Lock()
	a.attempts++
	status := http.StatusOK
	if a.answer != nil {
		status = a.answer(a.attempts)
	}
	if status == http.StatusOK {
		a.accepted = append(a.accepted, rep)
	}
	a.mu.Unlock()
	if status != http.StatusOK {
		problem(w, status, "refused by the test")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(job.RecordingAccepted{Accepted: len(rep.Objects)})
}

func (a *api) reports() []job.RecordingReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]job.RecordingReport(nil), a.accepted...)
}

func (a *api) attemptCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempts
}

// post is the Report function: an HTTP POST of the report, as the worker
// sends it.
func post(url string) func(ctx context.Context, r job.RecordingReport) (int, error) {
	return func(ctx context.Context, r job.RecordingReport) (int, error) {
		body, err := json.Marshal(r)
		if err != nil {
			return 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+job.RecordingPath(r.SessionID), bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return resp.StatusCode, fmt.Errorf("%s", msg)
		}
		return resp.StatusCode, nil
	}
}

// testBundle is an Uploader fed by a real packager, storing into a real
// store and reporting to the test's API.
type testBundle struct {
	u       *Uploader
	pk      *packager.Packager
	store   storage.Store
	api     *api
	ids     *recordingIDs
	spool   string
	held    atomic.Bool
	metrics *Metrics

	mu    sync.Mutex
	files []packager.File // every file the packager announced
}

type options struct {
	answer func(n int) int
	config func(*Config)
}

func setup(t *testing.T, store storage.Store, opts options) *testBundle {
	t.Helper()
	ids := &recordingIDs{
		stream: uuid.Must(uuid.NewV7()), session: uuid.Must(uuid.NewV7()), asset: uuid.Must(uuid.NewV7()),
		lease: ownership.Lease{Token: 42, Nonce: "nonce-" + uuid.NewString()},
	}
	b := &testBundle{store: store, ids: ids, api: newAPI(t, ids, opts.answer)}
	b.held.Store(true)
	data := t.TempDir()
	b.spool = filepath.Join(data, ".recording", ids.session.String())
	b.metrics = &Metrics{
		UploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "uploaded"}),
		UploadErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "errors"}),
		LostSegments:  prometheus.NewCounter(prometheus.CounterOpts{Name: "lost"}),
		QueueBytes:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "queue"}),
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := Config{
		Store: store, AssetID: ids.asset, StreamID: ids.stream, SessionID: ids.session, WorkerID: "worker-a",
		Lease: ids.lease, Held: b.held.Load, Report: post(b.api.srv.URL), SpoolDir: b.spool,
		Logger: log, Metrics: b.metrics,
	}
	if opts.config != nil {
		opts.config(&cfg)
	}
	u, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(u.Abort)
	b.u = u
	// A short window: the packager deletes segments soon after announcing
	// them, so the uploader must not depend on the packager's files.
	pk, err := packager.New(packager.Config{
		Dir: filepath.Join(data, ids.stream.String()), SegmentDuration: time.Second, WindowSize: 2, ExtraSegments: -1,
		Logger: log,
		OnFile: func(f packager.File) {
			b.mu.Lock()
			b.files = append(b.files, f)
			b.mu.Unlock()
			u.File(f)
		},
	})
	require.NoError(t, err)
	b.pk = pk
	return b
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (b *testBundle) start(t *testing.T, c *content) {
	t.Helper()
	require.NoError(t, b.pk.Tracks(c.video, c.audio))
}

// announced returns the segments the packager announced, by rendition and
// number.
func (b *testBundle) announced() map[string]packager.File {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]packager.File{}
	for _, f := range b.files {
		if f.Kind == packager.FileSegment {
			out[fmt.Sprintf("%s/%d", f.Rendition, f.Number)] = f
		}
	}
	return out
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var keyRE = regexp.MustCompile(`^assets/[0-9a-f-]{36}/(?:(?:360p|180p|audio)/(?:init-42-\d+\.mp4|42-\d+\.m4s)|thumbs/\d+\.jpg)$`)

// recorded checks the accepted reports against the store and the packager:
// every object exists with its size, inside the asset's prefix, no key
// twice, every segment's header reported before it, a Final report (when
// final) last. It returns the reported segments and the lost ones, by
// "rendition/number".
func (b *testBundle) recorded(t *testing.T, final bool) (segs map[string]job.RecordedObject, lost map[string]job.LostSegment, thumbs []job.RecordedObject) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	reps := b.api.reports()
	segs, lost = map[string]job.RecordedObject{}, map[string]job.LostSegment{}
	inits := map[string]job.RecordedObject{}
	keys := map[string]bool{}
	announced := b.announced()
	for i, rep := range reps {
		require.Equal(t, final && i == len(reps)-1, rep.Final, "report %d of %d: only the last is final", i+1, len(reps))
		for _, o := range rep.Objects {
			require.Regexp(t, keyRE, o.Key)
			require.True(t, strings.HasPrefix(o.Key, job.AssetPrefix(b.ids.asset)), o.Key)
			require.False(t, keys[o.Key], "%s reported twice", o.Key)
			keys[o.Key] = true
			info, err := b.store.Stat(ctx, o.Key)
			require.NoError(t, err, "%s is in the store", o.Key)
			require.Equal(t, o.Size, info.Size, "%s size", o.Key)
			switch o.Kind {
			case job.ObjectInit:
				require.NotNil(t, o.Track, o.Key)
				require.NotEmpty(t, o.Track.Codec)
				inits[o.Key] = o
			case job.ObjectSegment:
				init, ok := inits[o.Init]
				require.True(t, ok, "%s: its header %q was reported before it", o.Key, o.Init)
				require.Equal(t, o.Rendition, init.Rendition)
				id := fmt.Sprintf("%s/%d", o.Rendition, o.Number)
				f, ok := announced[id]
				require.True(t, ok, "%s was announced by the packager", id)
				require.Equal(t, f.Size, o.Size, id)
				require.True(t, f.Start.Equal(o.Start), id)
				require.Equal(t, f.MediaStart, o.MediaStart, id)
				require.InDelta(t, f.Duration.Seconds(), o.DurationS, 1e-9, id)
				segs[id] = o
			case job.ObjectThumbnail:
				require.Positive(t, o.Width)
				thumbs = append(thumbs, o)
			default:
				t.Fatalf("unknown kind %q", o.Kind)
			}
		}
		for _, l := range rep.Lost {
			id := fmt.Sprintf("%s/%d", l.Rendition, l.Number)
			require.NotContains(t, lost, id, "lost twice")
			_, ok := announced[id]
			require.True(t, ok, "lost %s was announced", id)
			require.Positive(t, l.DurationS)
			lost[id] = l
		}
	}
	for id := range lost {
		require.NotContains(t, segs, id, "%s both stored and lost", id)
	}
	if final {
		require.Len(t, inits, 3, "one header per track")
		require.Equal(t, len(announced), len(segs)+len(lost), "every segment is either recorded or lost")
		require.NoDirExists(t, b.spool, "the spool is removed")
		require.Zero(t, testutil.ToFloat64(b.metrics.QueueBytes))
	}
	return segs, lost, thumbs
}

func openS3(t *testing.T, weed *testkit.S3Server) storage.Store {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	s, err := storage.Open(ctx, weed.PrefixURL("recording"), storage.Options{AccessKeyID: weed.AccessKey, SecretAccessKey: weed.SecretKey})
	require.NoError(t, err)
	require.NoError(t, s.Ping(ctx))
	return s
}

func fileStore(t *testing.T) (storage.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := storage.NewFile(dir)
	require.NoError(t, err)
	return s, dir
}

// breakStore makes a file store fail every Put (its directory is replaced
// by a file), and returns the repair.
func breakStore(t *testing.T, dir string) func() {
	t.Helper()
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.WriteFile(dir, []byte("not a directory"), 0o644))
	return func() {
		require.NoError(t, os.Remove(dir))
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
}

func TestUploaderRecordsASession(t *testing.T) {
	t.Parallel()
	c := loadContent(t)
	run := func(t *testing.T, store storage.Store, answer func(int) int) {
		b := setup(t, store, options{answer: answer})
		b.start(t, c)
		feed(t, b.pk, c.events)
		require.NoError(t, b.pk.Close(true))
		require.NoError(t, b.u.Finish(testCtx(t, time.Minute)))

		segs, lost, _ := b.recorded(t, true)
		require.Empty(t, lost)
		require.GreaterOrEqual(t, len(segs), 3*10, "12 s of 1 s segments on three tracks")
		st := b.u.Stats()
		require.Zero(t, st.QueuedFiles)
		require.EqualValues(t, len(segs)+3, st.UploadedFiles)
		require.EqualValues(t, st.UploadedFiles, st.Reported)
		require.Equal(t, float64(st.UploadedBytes), testutil.ToFloat64(b.metrics.UploadedBytes))
		list, err := store.List(testCtx(t, time.Minute), job.AssetPrefix(b.ids.asset))
		require.NoError(t, err)
		require.Len(t, list, len(segs)+3, "the store holds what was reported, nothing else")
	}
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		store, _ := fileStore(t)
		// The API fails twice (a restart): the report is retried.
		run(t, store, func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
	})
	t.Run("s3", func(t *testing.T) {
		t.Parallel()
		run(t, openS3(t, testkit.SeaweedFS(t)), nil)
	})
}

// The store is down and the queue fills: feeding the packager (whose OnFile
// is File) still completes, the oldest segments are dropped and reported as
// lost, headers are kept, and what stayed queued is recorded once the store
// is back.
func TestUploaderQueueOverflowDropsTheOldestSegments(t *testing.T) {
	t.Parallel()
	c := loadContent(t)
	store, dir := fileStore(t)
	repair := breakStore(t, dir)
	const maxFiles = 8
	b := setup(t, store, options{config: func(c *Config) { c.MaxQueueFiles = maxFiles }})
	b.start(t, c)
	feed(t, b.pk, c.events) // completes: File never waits for the store
	require.NoError(t, b.pk.Close(true))
	st := b.u.Stats()
	require.LessOrEqual(t, st.QueuedFiles, maxFiles)
	require.Positive(t, st.LostSegments)
	require.Eventually(t, func() bool { return b.u.Stats().UploadErrors > 0 }, time.Minute, 10*time.Millisecond)
	require.Empty(t, b.api.reports(), "nothing is reported while nothing could be stored")

	repair()
	require.NoError(t, b.u.Finish(testCtx(t, time.Minute)))
	segs, lost, _ := b.recorded(t, true)
	require.Positive(t, len(segs))
	require.Len(t, lost, int(st.LostSegments))
	require.Equal(t, float64(st.LostSegments), testutil.ToFloat64(b.metrics.LostSegments))
	for id, l := range lost {
		require.Equal(t, ReasonQueueFull, l.Reason, id)
		for sid, s := range segs {
			if s.Rendition == l.Rendition {
				require.Less(t, l.Number, s.Number, "lost %s is older than recorded %s", id, sid)
			}
		}
	}
}

// A SeaweedFS killed mid-session and started again: the uploads wait and
// retry, and once it is back everything is recorded, nothing lost.
func TestUploaderSurvivesAStoreOutage(t *testing.T) {
	t.Parallel()
	c := loadContent(t)
	weed := testkit.SeaweedFS(t)
	b := setup(t, openS3(t, weed), options{})
	b.start(t, c)
	third := len(c.events) / 3
	feed(t, b.pk, c.events[:third])
	require.Eventually(t, func() bool {
		for _, r := range b.api.reports() {
			for _, o := range r.Objects {
				if o.Kind == job.ObjectSegment {
					return true
				}
			}
		}
		return false
	}, time.Minute, 20*time.Millisecond, "segments are recorded before the outage")

	weed.Kill()
	feed(t, b.pk, c.events[third:])
	require.NoError(t, b.pk.Close(true))
	require.Eventually(t, func() bool { return b.u.Stats().UploadErrors >= 3 }, time.Minute, 20*time.Millisecond,
		"uploads fail while the store is down")
	require.Positive(t, b.u.Stats().QueuedFiles)
	require.NoError(t, weed.Start(testCtx(t, 2*time.Minute)))

	require.NoError(t, b.u.Finish(testCtx(t, 2*time.Minute)))
	segs, lost, _ := b.recorded(t, true)
	require.Empty(t, lost)
	require.GreaterOrEqual(t, len(segs), 3*10)
	require.Positive(t, testutil.ToFloat64(b.metrics.UploadErrors))
}

// 409 (fenced out, or the asset no longer records) stops the recording for
// good: nothing more is uploaded, no final report.
func TestUploaderStopsOnConflict(t *testing.T) {
	t.Parallel()
	c := loadContent(t)
	store, _ := fileStore(t)
	b := setup(t, store, options{answer: func(int) int { return http.StatusConflict }})
	b.start(t, c)
	half := len(c.events) / 2
	feed(t, b.pk, c.events[:half])
	require.Eventually(t, func() bool { return b.api.attemptCount() > 0 }, time.Minute, 10*time.Millisecond)
	feed(t, b.pk, c.events[half:])
	require.NoError(t, b.pk.Close(true))
	require.ErrorIs(t, b.u.Finish(testCtx(t, time.Minute)), ErrStopped)

	require.Equal(t, 1, b.api.attemptCount(), "no report after the 409")
	list, err := store.List(testCtx(t, time.Minute), "")
	require.NoError(t, err)
	require.EqualValues(t, b.u.Stats().UploadedFiles, len(list))
	require.Less(t, len(list), len(b.announced()), "the rest was never uploaded")
	require.NoDirExists(t, b.spool)
}

// A worker whose lease is gone never uploads.
func TestUploaderNeverUploadsWithoutTheLease(t *testing.T) {
	t.Parallel()
	c := loadContent(t)
	store, _ := fileStore(t)
	b := setup(t, store, options{})
	b.held.Store(false)
	b.start(t, c)
	feed(t, b.pk, c.events)
	require.NoError(t, b.pk.Close(true))
	require.ErrorIs(t, b.u.Finish(testCtx(t, time.Minute)), ErrStopped)

	list, err := store.List(testCtx(t, time.Minute), "")
	require.NoError(t, err)
	require.Empty(t, list)
	require.Zero(t, b.api.attemptCount())
	require.NotEmpty(t, b.announced())
	require.NoDirExists(t, b.spool)
}

// Abort (ownership lost, worker shutdown) stops at once: no final report,
// nothing uploaded afterwards even when the store comes back.
func TestUploaderAbort(t *testing.T) {
	t.Parallel()
	c := loadContent(t)
	store, dir := fileStore(t)
	repair := breakStore(t, dir)
	b := setup(t, store, options{})
	b.start(t, c)
	feed(t, b.pk, c.events)
	require.Eventually(t, func() bool { return b.u.Stats().UploadErrors > 0 }, time.Minute, 10*time.Millisecond)
	b.u.Abort()
	require.NoDirExists(t, b.spool)
	repair()
	b.mu.Lock()
	last := b.files[len(b.files)-1]
	b.mu.Unlock()
	b.u.File(last) // ignored once aborted
	require.ErrorIs(t, b.u.Finish(testCtx(t, time.Minute)), ErrStopped, "Finish after Abort does nothing")
	list, err := store.List(testCtx(t, time.Minute), "")
	require.NoError(t, err)
	require.Empty(t, list)
	require.Zero(t, b.api.attemptCount())
}

// Thumbnails are best effort: only the newest few wait while the store is
// down; those are recorded under thumbs/{unix_ms}.jpg.
func TestUploaderThumbnails(t *testing.T) {
	t.Parallel()
	store, dir := fileStore(t)
	repair := breakStore(t, dir)
	b := setup(t, store, options{})
	src := filepath.Join(t.TempDir(), "latest.jpg")
	at := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	var all []time.Time
	for i := range 10 {
		img := image.NewRGBA(image.Rect(0, 0, 64, 36))
		for x := range 64 {
			img.Set(x, i, color.RGBA{R: uint8(20 * i), A: 255})
		}
		var buf bytes.Buffer
		require.NoError(t, jpeg.Encode(&buf, img, nil))
		// As the thumbnailer does: a new file renamed over the old one.
		tmp := src + ".tmp"
		require.NoError(t, os.WriteFile(tmp, buf.Bytes(), 0o644))
		require.NoError(t, os.Rename(tmp, src))
		th := media.Thumbnail{Path: src, At: at.Add(time.Duration(i) * 10 * time.Second), Width: 64, Height: 36}
		all = append(all, th.At)
		b.u.Thumbnail(th)
		require.LessOrEqual(t, b.u.Stats().QueuedFiles, DefaultMaxThumbnails+1, "the newest few, and the one being uploaded")
	}
	require.Eventually(t, func() bool { return b.u.Stats().UploadErrors > 0 }, time.Minute, 10*time.Millisecond)
	repair()
	require.NoError(t, b.u.Finish(testCtx(t, time.Minute)))

	reps := b.api.reports()
	require.True(t, reps[len(reps)-1].Final)
	var got []job.RecordedObject
	for _, r := range reps {
		got = append(got, r.Objects...)
	}
	require.LessOrEqual(t, len(got), DefaultMaxThumbnails+1)
	byTime := map[int64]job.RecordedObject{}
	for _, o := range got {
		require.Equal(t, job.ObjectThumbnail, o.Kind)
		require.Equal(t, fmt.Sprintf("%sthumbs/%d.jpg", job.AssetPrefix(b.ids.asset), o.Start.UnixMilli()), o.Key)
		rd, info, err := store.Get(testCtx(t, time.Minute), o.Key, 0, 0)
		require.NoError(t, err)
		_, err = jpeg.Decode(rd)
		rd.Close()
		require.NoError(t, err, "%s is a JPEG", o.Key)
		require.Equal(t, o.Size, info.Size)
		require.Equal(t, 64, o.Width)
		require.Equal(t, 36, o.Height)
		byTime[o.Start.UnixMilli()] = o
	}
	for _, at := range all[len(all)-DefaultMaxThumbnails:] {
		require.Contains(t, byTime, at.UnixMilli(), "the newest thumbnails are kept")
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	store, _ := fileStore(t)
	_, err := New(Config{Store: store})
	require.Error(t, err)
}
