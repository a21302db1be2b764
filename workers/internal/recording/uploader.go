// Package recording uploads the CMAF files of a recording session to the
// object store and registers them with the API (docs/recording.md, "How a
// worker records"; the contract is pkg/job/recording.go).
//
// The packager announces every file it completed (packager.Config.OnFile);
// Uploader.File hard-links it into a spool directory and queues it, without
// ever waiting for the store, so a slow or unreachable store never stalls the
// live pipeline. One goroutine uploads the queue in order, retrying store
// failures with a back-off for as long as the file stays queued, and reports
// each uploaded batch to the API. The queue is bounded: on overflow the
// oldest queued segment is dropped and reported as lost.
package recording

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/packager"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	DefaultMaxQueueBytes      = 1 << 30 // 1 GiB
	DefaultMaxQueueFiles      = 2000
	DefaultMaxThumbnails      = 3
	DefaultRetryMin           = 200 * time.Millisecond
	DefaultRetryMax           = 5 * time.Second
	DefaultRequestTimeout     = 30 * time.Second
	DefaultFinalReportTimeout = 15 * time.Second
	// maxReportObjects bounds the objects of one report; a longer backlog
	// goes in several reports, in order.
	maxReportObjects = 200
)

// Reasons of job.LostSegment.
const (
	ReasonQueueFull  = "upload queue full"
	ReasonSessionEnd = "store unavailable at session end"
	ReasonNoInit     = "its CMAF header was not recorded"
	ReasonSpoolGone  = "spooled file missing"
)

// Config configures an Uploader. Store, AssetID, StreamID, SessionID,
// WorkerID, Lease, Held, Report and SpoolDir are required; the zero value of
// every other field means its default.
type Config struct {
	Store     storage.Store
	AssetID   uuid.UUID
	StreamID  uuid.UUID
	SessionID uuid.UUID
	WorkerID  string
	// Lease is the worker's ownership of the stream: its Token goes into
	// every object key, Token and Nonce into every report.
	Lease ownership.Lease
	// Held reports whether the lease is still held (hold.Err() == nil). It
	// is asked before every upload and every report: a fenced-out worker
	// never uploads.
	Held func() bool
	// Report posts a report to the API (job.RecordingPath). err without a
	// status (0) is a network failure, retried; with a status it is what the
	// API said, for the log.
	Report func(ctx context.Context, r job.RecordingReport) (status int, err error)
	// SpoolDir holds the queued files ({data_dir}/.recording/{session_id});
	// created by New, removed by Finish and Abort. It must be on the same
	// file system as the packager's directory, or File copies instead of
	// hard-linking.
	SpoolDir string

	MaxQueueBytes int64 // bytes of queued files; default DefaultMaxQueueBytes
	MaxQueueFiles int   // queued files; default DefaultMaxQueueFiles
	MaxThumbnails int   // queued thumbnails, the newest kept; default DefaultMaxThumbnails

	RetryMin, RetryMax time.Duration // store and API retry back-off; defaults 200 ms doubling to 5 s
	RequestTimeout     time.Duration // bound of each Put and report; default 30 s
	// FinalReportTimeout bounds the final report's retries after Finish's
	// context ended; default 15 s.
	FinalReportTimeout time.Duration

	Logger  *slog.Logger
	Metrics *Metrics // nil: none
}

// Metrics are the worker-wide recording metrics (package worker registers
// them); every field may be nil.
type Metrics struct {
	UploadedBytes prometheus.Counter // dionysia_worker_recording_uploaded_bytes_total
	UploadErrors  prometheus.Counter // dionysia_worker_recording_upload_errors_total
	LostSegments  prometheus.Counter // dionysia_worker_recording_lost_segments_total
	QueueBytes    prometheus.Gauge   // dionysia_worker_recording_queue_bytes
}

func (m *Metrics) uploaded(n int64) {
	if m != nil && m.UploadedBytes != nil {
		m.UploadedBytes.Add(float64(n))
	}
}

func (m *Metrics) uploadError() {
	if m != nil && m.UploadErrors != nil {
		m.UploadErrors.Inc()
	}
}

func (m *Metrics) lost(n int) {
	if m != nil && m.LostSegments != nil && n > 0 {
		m.LostSegments.Add(float64(n))
	}
}

func (m *Metrics) queue(delta int64) {
	if m != nil && m.QueueBytes != nil && delta != 0 {
		m.QueueBytes.Add(float64(delta))
	}
}

// Stats are an Uploader's counts so far.
type Stats struct {
	QueuedFiles   int   // files waiting (the one being uploaded included)
	QueuedBytes   int64 // their size
	UploadedFiles int64 // files stored
	UploadedBytes int64
	Reported      int64 // objects the API accepted
	LostSegments  int64 // segments that will never be uploaded
	UploadErrors  int64 // failed store requests (each retry counts)
}

// ErrStopped is what Finish returns when the recording had stopped before:
// the API refused a report (409: fenced out or the asset no longer records;
// 404; 400), the lease was lost, or Abort was called.
var ErrStopped = errors.New("recording stopped")

type item struct {
	kind  string // job.ObjectInit, job.ObjectSegment or job.ObjectThumbnail
	file  packager.File
	thumb media.Thumbnail
	spool string // hard link (or copy) in the spool directory
	size  int64
}

// Uploader records one transcode task's output. File and Thumbnail are
// safe for concurrent use and never wait for the store or the API.
type Uploader struct {
	cfg    Config
	log    *slog.Logger
	prefix string

	ctx    context.Context // ends with Abort or a stop
	cancel context.CancelFunc
	wake   chan struct{} // cap 1: work was queued
	finish chan struct{} // closed by Finish
	done   chan struct{} // closed when run returns
	seq    atomic.Uint64 // spool file names
	closed atomic.Bool   // no more files accepted

	mu        sync.Mutex
	queue     []*item
	busy      bool // queue[0] is being uploaded
	bytes     int64
	lost      []job.LostSegment // not yet reported
	drain     context.Context   // Finish's context
	stopErr   error             // why the recording stopped early
	stats     Stats
	closeOnce sync.Once
	result    error // Finish's answer
	// inits maps "{rendition}/{init file name}" to the key it was stored
	// under (run goroutine only).
	inits map[string]string
}

// New checks cfg, creates the spool directory and starts the upload
// goroutine. End it with Finish or Abort.
func New(cfg Config) (*Uploader, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("recording: Store is required")
	case cfg.AssetID == uuid.Nil || cfg.StreamID == uuid.Nil || cfg.SessionID == uuid.Nil:
		return nil, errors.New("recording: AssetID, StreamID and SessionID are required")
	case cfg.WorkerID == "":
		return nil, errors.New("recording: WorkerID is required")
	case cfg.Held == nil || cfg.Report == nil:
		return nil, errors.New("recording: Held and Report are required")
	case cfg.SpoolDir == "":
		return nil, errors.New("recording: SpoolDir is required")
	}
	cfg.MaxQueueBytes = cmp.Or(cfg.MaxQueueBytes, DefaultMaxQueueBytes)
	cfg.MaxQueueFiles = cmp.Or(cfg.MaxQueueFiles, DefaultMaxQueueFiles)
	cfg.MaxThumbnails = cmp.Or(cfg.MaxThumbnails, DefaultMaxThumbnails)
	cfg.RetryMin = cmp.Or(cfg.RetryMin, DefaultRetryMin)
	cfg.RetryMax = max(cmp.Or(cfg.RetryMax, DefaultRetryMax), cfg.RetryMin)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout)
	cfg.FinalReportTimeout = cmp.Or(cfg.FinalReportTimeout, DefaultFinalReportTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// A spool left by an earlier process (killed) holds nothing anyone will
	// upload: start empty.
	if err := os.RemoveAll(cfg.SpoolDir); err != nil {
		return nil, fmt.Errorf("clearing recording spool: %w", err)
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating recording spool: %w", err)
	}
	u := &Uploader{
		cfg:    cfg,
		log:    cfg.Logger.With("asset_id", cfg.AssetID),
		prefix: job.AssetPrefix(cfg.AssetID),
		wake:   make(chan struct{}, 1),
		finish: make(chan struct{}),
		done:   make(chan struct{}),
		inits:  map[string]string{},
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	go u.run()
	return u, nil
}

// File queues a file the packager completed (packager.Config.OnFile). It
// hard-links the file into the spool, so the packager may delete it, and
// returns without waiting for anything but the link.
func (u *Uploader) File(f packager.File) {
	if u.closed.Load() {
		return
	}
	kind := job.ObjectSegment
	if f.Kind == packager.FileInit {
		kind = job.ObjectInit
	}
	it := &item{kind: kind, file: f, size: f.Size}
	if err := u.spool(it, f.Path); err != nil {
		if u.closed.Load() {
			return // ending: the spool is going away
		}
		u.log.Error("spooling a recorded file", "file", f.String(), "err", err)
		if kind == job.ObjectSegment {
			u.addLost(f, ReasonSpoolGone)
		}
		return
	}
	u.enqueue(it)
}

// Thumbnail queues a thumbnail. Thumbnails are best effort: only the newest
// MaxThumbnails wait, and a full queue drops them first.
func (u *Uploader) Thumbnail(th media.Thumbnail) {
	if u.closed.Load() {
		return
	}
	it := &item{kind: job.ObjectThumbnail, thumb: th}
	if err := u.spool(it, th.Path); err != nil {
		u.log.Warn("spooling a thumbnail", "path", th.Path, "err", err)
		return
	}
	st, err := os.Stat(it.spool)
	if err != nil {
		_ = os.Remove(it.spool)
		return
	}
	it.size = st.Size()
	u.enqueue(it)
}

// spool links (or, across file systems, copies) path into the spool.
func (u *Uploader) spool(it *item, path string) error {
	dst := filepath.Join(u.cfg.SpoolDir, strconv.FormatUint(u.seq.Add(1), 10)+"-"+filepath.Base(path))
	if err := os.Link(path, dst); err == nil {
		it.spool = dst
		return nil
	}
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		_ = os.Remove(dst)
		return err
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(dst)
		return err
	}
	it.spool = dst
	return nil
}

func (u *Uploader) addLost(f packager.File, reason string) {
	u.mu.Lock()
	u.lost = append(u.lost, lostOf(f, reason))
	u.stats.LostSegments++
	u.mu.Unlock()
	u.cfg.Metrics.lost(1)
}

func lostOf(f packager.File, reason string) job.LostSegment {
	return job.LostSegment{Rendition: f.Rendition, Number: f.Number, Start: f.Start, DurationS: f.Duration.Seconds(), Reason: reason}
}

// enqueue appends it and enforces the bounds: thumbnails beyond
// MaxThumbnails go first, then, while the queue is too large, the oldest
// thumbnail or else the oldest segment (never an init, never the file being
// uploaded).
func (u *Uploader) enqueue(it *item) {
	var remove []string
	u.mu.Lock()
	if u.closed.Load() {
		u.mu.Unlock()
		_ = os.Remove(it.spool)
		return
	}
	u.queue = append(u.queue, it)
	u.bytes += it.size
	u.cfg.Metrics.queue(it.size)
	first := 0
	if u.busy {
		first = 1
	}
	if it.kind == job.ObjectThumbnail {
		n := 0
		for _, q := range u.queue[first:] {
			if q.kind == job.ObjectThumbnail {
				n++
			}
		}
		for ; n > u.cfg.MaxThumbnails; n-- {
			remove = append(remove, u.dropLocked(u.oldest(first, job.ObjectThumbnail), "").spool)
		}
	}
	lost := 0
	for len(u.queue) > u.cfg.MaxQueueFiles || u.bytes > u.cfg.MaxQueueBytes {
		i := u.oldest(first, job.ObjectThumbnail)
		if i < 0 {
			i = u.oldest(first, job.ObjectSegment)
		}
		if i < 0 {
			break // only headers: they are never dropped
		}
		d := u.dropLocked(i, ReasonQueueFull)
		remove = append(remove, d.spool)
		if d.kind == job.ObjectSegment {
			lost++
		}
	}
	u.mu.Unlock()
	if lost > 0 {
		u.cfg.Metrics.lost(lost)
		u.log.Warn("recording upload queue full, dropped the oldest queued segments", "dropped", lost,
			"max_files", u.cfg.MaxQueueFiles, "max_bytes", u.cfg.MaxQueueBytes)
	}
	for _, p := range remove {
		_ = os.Remove(p)
	}
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// oldest is the index of the first queued item of kind from first on, or -1.
func (u *Uploader) oldest(first int, kind string) int {
	for i := first; i < len(u.queue); i++ {
		if u.queue[i].kind == kind {
			return i
		}
	}
	return -1
}

// dropLocked removes queue[i]; a segment dropped with a reason is lost.
func (u *Uploader) dropLocked(i int, reason string) *item {
	it := u.queue[i]
	u.queue = append(u.queue[:i], u.queue[i+1:]...)
	u.bytes -= it.size
	u.cfg.Metrics.queue(-it.size)
	if it.kind == job.ObjectSegment && reason != "" {
		u.lost = append(u.lost, lostOf(it.file, reason))
		u.stats.LostSegments++
	}
	return it
}

// Stats returns the counts so far.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	s.QueuedFiles = len(u.queue)
	s.QueuedBytes = u.bytes
	return s
}

// Finish ends a session that ended normally (its playlists are closed):
// everything queued is uploaded, for as long as ctx allows, then a final
// report lists what was not uploaded as lost (ReasonSessionEnd). Its retries
// may take FinalReportTimeout after ctx ended. The spool is removed. Finish
// returns nil when the final report was accepted.
func (u *Uploader) Finish(ctx context.Context) error {
	u.closed.Store(true)
	u.mu.Lock()
	first := u.drain == nil
	if first {
		u.drain = ctx
	}
	u.mu.Unlock()
	if first {
		close(u.finish)
	}
	<-u.done
	u.cleanup()
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.result
}

// Abort stops at once: the lease was lost (the next owner continues the
// asset) or the worker shuts down. Nothing more is uploaded or reported, no
// final report is sent, and the spool is removed.
func (u *Uploader) Abort() {
	u.closed.Store(true)
	u.cancel()
	<-u.done
	u.cleanup()
}

// cleanup discards what is still queued and removes the spool.
func (u *Uploader) cleanup() {
	u.closeOnce.Do(func() {
		u.mu.Lock()
		u.cfg.Metrics.queue(-u.bytes)
		u.queue, u.bytes, u.busy = nil, 0, false
		u.mu.Unlock()
		if err := os.RemoveAll(u.cfg.SpoolDir); err != nil {
			u.log.Warn("removing recording spool", "dir", u.cfg.SpoolDir, "err", err)
		}
	})
}

// errStop ends the run loop: the recording must stop for good.
type errStop struct{ reason error }

func (e errStop) Error() string { return e.reason.Error() }

// errLost is an upload no retry can fix; a segment is then lost for reason.
type errLost struct {
	reason string
	err    error
}

func (e errLost) Error() string { return e.reason + ": " + e.err.Error() }
func (e errLost) Unwrap() error { return e.err }

var errFenced = errors.New("the stream's ownership lease is no longer held")

func (u *Uploader) run() {
	defer close(u.done)
	defer u.cancel()
	err := u.loop()
	u.closed.Store(true)
	u.mu.Lock()
	u.result = err
	u.mu.Unlock()
}

// loop uploads and reports until Finish completes, Abort, or a stop.
func (u *Uploader) loop() error {
	var pending []job.RecordedObject // uploaded, not yet reported
	work := u.ctx                    // bounds uploads: Abort, and Finish's context once Finish was called
	finishing := false
	unhook := func() bool { return false }
	defer func() { unhook() }()
	for {
		if u.ctx.Err() != nil {
			return ErrStopped // aborted
		}
		if !finishing && closedChan(u.finish) {
			finishing = true
			u.mu.Lock()
			drain := u.drain
			u.mu.Unlock()
			var cancel context.CancelFunc
			work, cancel = context.WithCancel(u.ctx) // cancelled with u.ctx when loop returns
			unhook = context.AfterFunc(drain, cancel)
		}
		it := u.head()
		// Report when nothing waits, when the batch is full, or when
		// Finish's time is up.
		if (it == nil || len(pending) >= maxReportObjects || work.Err() != nil) && (len(pending) > 0 || u.hasLost()) {
			var err error
			pending, err = u.flush(work, pending, false)
			if stop := (errStop{}); errors.As(err, &stop) {
				return u.stop(stop.reason)
			}
			if err != nil && !finishing {
				return ErrStopped // aborted
			}
			// Finishing and out of time: the final report carries them.
		}
		if finishing && (it == nil || work.Err() != nil) {
			return u.final(pending)
		}
		if it == nil {
			select {
			case <-u.wake:
			case <-u.finish:
			case <-u.ctx.Done():
			}
			continue
		}
		if work.Err() != nil {
			continue // aborted: returns above
		}
		obj, err := u.upload(work, it)
		var stop errStop
		var lost errLost
		switch {
		case errors.As(err, &stop):
			return u.stop(stop.reason)
		case errors.As(err, &lost):
			u.log.Error("a file will not be recorded", "file", it.name(), "err", err)
			u.pop(it, lost.reason)
		case err != nil:
			// Aborted, or Finish's time is up: the next turn ends the loop.
		default:
			u.pop(it, "")
			pending = append(pending, obj)
		}
	}
}

func closedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (it *item) name() string {
	if it.kind == job.ObjectThumbnail {
		return "thumbnail " + it.thumb.At.UTC().Format(time.RFC3339Nano)
	}
	return it.file.String()
}

func (u *Uploader) head() *item {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.queue) == 0 {
		return nil
	}
	u.busy = true
	return u.queue[0]
}

// pop removes the head once uploaded, or given up on: a segment given up on
// is lost for lostReason.
func (u *Uploader) pop(it *item, lostReason string) {
	u.mu.Lock()
	if len(u.queue) > 0 && u.queue[0] == it {
		u.queue = u.queue[1:]
		u.bytes -= it.size
		u.cfg.Metrics.queue(-it.size)
	}
	u.busy = false
	lost := lostReason != "" && it.kind == job.ObjectSegment
	if lost {
		u.lost = append(u.lost, lostOf(it.file, lostReason))
		u.stats.LostSegments++
	}
	u.mu.Unlock()
	if lost {
		u.cfg.Metrics.lost(1)
	}
	_ = os.Remove(it.spool)
}

func (u *Uploader) hasLost() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.lost) > 0
}

// stop ends the recording for good: the queue is discarded, nothing more
// is uploaded or reported.
func (u *Uploader) stop(reason error) error {
	u.closed.Store(true)
	u.log.Warn("recording stopped on this worker: nothing more is uploaded", "err", reason)
	u.mu.Lock()
	queue := u.queue
	u.cfg.Metrics.queue(-u.bytes)
	u.queue, u.bytes, u.busy = nil, 0, false
	u.mu.Unlock()
	for _, it := range queue {
		_ = os.Remove(it.spool)
	}
	return fmt.Errorf("%w: %w", ErrStopped, reason)
}

// object is what the API is told about it once stored.
func (u *Uploader) object(it *item) (job.RecordedObject, error) {
	token := strconv.FormatInt(u.cfg.Lease.Token, 10)
	switch it.kind {
	case job.ObjectThumbnail:
		return job.RecordedObject{
			Kind: job.ObjectThumbnail, Size: it.size,
			Key:   u.prefix + "thumbs/" + strconv.FormatInt(it.thumb.At.UnixMilli(), 10) + ".jpg",
			Start: it.thumb.At.UTC(), Width: it.thumb.Width, Height: it.thumb.Height,
		}, nil
	case job.ObjectInit:
		f := it.file
		o := job.RecordedObject{
			Kind: job.ObjectInit, Rendition: f.Rendition, Size: it.size, Run: f.Run,
			Key: u.prefix + f.Rendition + "/init-" + token + "-" + strconv.Itoa(f.Run) + ".mp4",
		}
		if tr := f.Track; tr != nil {
			o.Track = &job.RecordedTrack{
				Audio: tr.Audio, Codec: tr.Codec, Timescale: tr.Timescale, Width: tr.Width, Height: tr.Height,
				FrameRate: tr.FrameRate, Bandwidth: tr.Bandwidth, Channels: tr.Channels, SampleRate: tr.SampleRate,
			}
		}
		return o, nil
	default:
		f := it.file
		init, ok := u.inits[f.Rendition+"/"+f.Init]
		if !ok {
			return job.RecordedObject{}, errLost{ReasonNoInit, fmt.Errorf("header %s/%s was never stored", f.Rendition, f.Init)}
		}
		return job.RecordedObject{
			Kind: job.ObjectSegment, Rendition: f.Rendition, Size: it.size, Run: f.Run,
			Key:    u.prefix + f.Rendition + "/" + token + "-" + strconv.FormatUint(f.Number, 10) + ".m4s",
			Number: f.Number, Init: init, Start: f.Start, DurationS: f.Duration.Seconds(), MediaStart: f.MediaStart,
		}, nil
	}
}

func contentType(kind string) string {
	switch kind {
	case job.ObjectInit:
		return "video/mp4"
	case job.ObjectSegment:
		return "video/iso.segment"
	default:
		return "image/jpeg"
	}
}

// upload stores it, retrying store failures with back-off until it is
// stored or ctx ends. Before each attempt it checks the lease (errStop when
// it is lost); errLost when no retry can help.
func (u *Uploader) upload(ctx context.Context, it *item) (job.RecordedObject, error) {
	obj, err := u.object(it)
	if err != nil {
		return obj, err
	}
	if err := storage.CheckKey(obj.Key); err != nil {
		return obj, errLost{"invalid object key", err}
	}
	b := backoff{min: u.cfg.RetryMin, max: u.cfg.RetryMax}
	var failingSince time.Time
	for attempt := 1; ; attempt++ {
		if !u.cfg.Held() {
			return obj, errStop{errFenced}
		}
		err := u.put(ctx, obj.Key, it)
		if err == nil {
			if !failingSince.IsZero() {
				u.log.Info("recording store reachable again", "store", u.cfg.Store.String(),
					"failed_for", time.Since(failingSince).Round(time.Millisecond), "attempts", attempt)
			}
			u.mu.Lock()
			u.stats.UploadedFiles++
			u.stats.UploadedBytes += it.size
			u.mu.Unlock()
			u.cfg.Metrics.uploaded(it.size)
			if it.kind == job.ObjectInit {
				u.inits[it.file.Rendition+"/"+filepath.Base(it.file.Path)] = obj.Key
			}
			return obj, nil
		}
		if errors.As(err, new(errLost)) || ctx.Err() != nil {
			return obj, err
		}
		u.mu.Lock()
		u.stats.UploadErrors++
		u.mu.Unlock()
		u.cfg.Metrics.uploadError()
		if failingSince.IsZero() {
			failingSince = time.Now()
			u.log.Warn("recording store failed, retrying while the file is queued", "store", u.cfg.Store.String(),
				"key", obj.Key, "err", err)
		}
		if !sleep(ctx, b.next()) {
			return obj, ctx.Err()
		}
	}
}

// put stores the spooled file under key.
func (u *Uploader) put(ctx context.Context, key string, it *item) error {
	f, err := os.Open(it.spool)
	if err != nil {
		return errLost{ReasonSpoolGone, err}
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, u.cfg.RequestTimeout)
	defer cancel()
	return u.cfg.Store.Put(ctx, key, f, it.size, contentType(it.kind))
}

// flush reports pending (and the lost segments) in reports of at most
// maxReportObjects objects, retrying failures until ctx ends. It returns
// what is still unreported. The last report is Final when final is set.
func (u *Uploader) flush(ctx context.Context, pending []job.RecordedObject, final bool) ([]job.RecordedObject, error) {
	for {
		n := min(len(pending), maxReportObjects)
		u.mu.Lock()
		lost := slices.Clone(u.lost)
		u.mu.Unlock()
		rep := job.RecordingReport{
			StreamID: u.cfg.StreamID, SessionID: u.cfg.SessionID, AssetID: u.cfg.AssetID, WorkerID: u.cfg.WorkerID,
			Token: u.cfg.Lease.Token, Nonce: u.cfg.Lease.Nonce,
			Objects: pending[:n], Lost: lost, Final: final && n == len(pending),
		}
		if err := u.report(ctx, rep); err != nil {
			return pending, err
		}
		u.mu.Lock()
		u.lost = u.lost[len(lost):]
		u.stats.Reported += int64(n)
		u.mu.Unlock()
		pending = pending[n:]
		if len(pending) == 0 {
			return nil, nil
		}
	}
}

// report sends one report, retrying network failures and 5xx until ctx
// ends. 409, 404 and 400 stop the recording (errStop).
func (u *Uploader) report(ctx context.Context, rep job.RecordingReport) error {
	b := backoff{min: u.cfg.RetryMin, max: u.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		if !u.cfg.Held() {
			return errStop{errFenced}
		}
		rctx, cancel := context.WithTimeout(ctx, u.cfg.RequestTimeout)
		status, err := u.cfg.Report(rctx, rep)
		cancel()
		switch {
		case status/100 == 2:
			return nil
		case status == http.StatusConflict:
			return errStop{fmt.Errorf("the API refused the recording report (409: this worker is fenced out or the asset no longer records): %v", err)}
		case status/100 == 4:
			u.log.Error("the API rejected a recording report", "status", status, "err", err)
			return errStop{fmt.Errorf("the API rejected the recording report (%d): %v", status, err)}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt == 1 || attempt%10 == 0 {
			u.log.Warn("reporting recorded files, retrying", "status", status, "attempt", attempt, "err", err)
		}
		if !sleep(ctx, b.next()) {
			return ctx.Err()
		}
	}
}

// final sends the final report: pending objects, the lost segments, and
// every segment still queued as lost. Its retries are bounded by
// FinalReportTimeout (and Abort), not by Finish's context, which may have
// ended.
func (u *Uploader) final(pending []job.RecordedObject) error {
	u.mu.Lock()
	left := 0
	for _, it := range u.queue {
		if it.kind == job.ObjectSegment {
			u.lost = append(u.lost, lostOf(it.file, ReasonSessionEnd))
			left++
		}
	}
	u.stats.LostSegments += int64(left)
	u.mu.Unlock()
	u.cfg.Metrics.lost(left)
	if left > 0 {
		u.log.Warn("recording: segments not uploaded by the end of the session", "lost", left)
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.cfg.FinalReportTimeout)
	defer cancel()
	_, err := u.flush(ctx, pending, true)
	var stop errStop
	if errors.As(err, &stop) {
		return u.stop(stop.reason)
	}
	if err != nil {
		return fmt.Errorf("sending the final recording report: %w", err)
	}
	return nil
}

type backoff struct{ min, max, cur time.Duration }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

// sleep waits d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
