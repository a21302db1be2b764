// Command dionysia-bench-transcode runs the worker's transcoding path, the
// GStreamer pipeline feeding the CMAF packager, on a media file, as fast as
// the machine allows, and prints what it did as one JSON object on stdout.
// It exists for the benchmarks in bench/ (see docs/performance.md): the
// pipeline and packager are internal packages of the workers module, so a
// program that drives them has to live here. -streams N runs N independent
// copies at once in this one process, the way one worker hosts N live
// streams. CPU time and peak memory are measured by the parent (getrusage of
// the child), so this program reports only wall times and output counters.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/packager"
	"github.com/dionysia/dionysia/workers/internal/pipeline"
	"github.com/dionysia/dionysia/workers/internal/recording"
	"github.com/google/uuid"
)

// Result is the program's output.
type Result struct {
	Streams []StreamResult `json:"streams"`
	// WallSeconds is the time from starting the first pipeline to the end of
	// the last one.
	WallSeconds float64 `json:"wall_seconds"`
}

// StreamResult describes one pipeline run.
type StreamResult struct {
	Dir string `json:"dir"`
	// WallSeconds is this pipeline's time from Run to its return (start-up,
	// transcoding, flushing the packager).
	WallSeconds float64 `json:"wall_seconds"`
	// MediaSeconds is the media time encoded: frames of the first rendition
	// over its frame rate.
	MediaSeconds float64           `json:"media_seconds"`
	Renditions   []RenditionResult `json:"renditions"`
	Skipped      []string          `json:"skipped,omitempty"`
	// Thumbnails is how many thumbnails were written (-thumbnail-interval).
	Thumbnails int `json:"thumbnails"`
	// RecordedFiles and RecordedBytes are what the recording uploaded
	// (-record), LostSegments what it could not.
	RecordedFiles int64  `json:"recorded_files"`
	RecordedBytes int64  `json:"recorded_bytes"`
	LostSegments  int64  `json:"lost_segments"`
	Error         string `json:"error,omitempty"`
}

// RenditionResult are one rendition's counters.
type RenditionResult struct {
	Name      string `json:"name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	FramesOut uint64 `json:"frames_out"`
	Segments  uint64 `json:"segments"`
	Bytes     uint64 `json:"bytes"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dionysia-bench-transcode:", err)
		os.Exit(1)
	}
}

func run() error {
	src := flag.String("src", "", "input media file (required)")
	out := flag.String("out", "", "output directory: one subdirectory per stream (required)")
	profile := flag.String("profile", ladder.Builtin720p, "built-in profile name, used when -ladder is empty")
	ladderFile := flag.String("ladder", "", "JSON file holding a ladder (renditions and audio)")
	streams := flag.Int("streams", 1, "pipelines to run at the same time in this process")
	segment := flag.Duration("segment", 2*time.Second, "segment duration")
	threads := flag.Int("threads", 0, "x264 threads per rendition (0: the worker's default)")
	thumbs := flag.Duration("thumbnail-interval", 0, "write the live thumbnail every this much stream time, as a worker does (0: off)")
	record := flag.String("record", "", "record every stream to this store URL as a worker does (file:///dir or s3://…; S3 credentials from DIONYSIA_STORAGE_ACCESS_KEY_ID/_SECRET_ACCESS_KEY); empty: off")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	verbose := flag.Bool("v", false, "log the pipelines' warnings on stderr")
	flag.Parse()
	if *src == "" || *out == "" {
		return errors.New("-src and -out are required")
	}
	if *streams < 1 {
		return fmt.Errorf("-streams must be at least 1, got %d", *streams)
	}
	abs, err := filepath.Abs(*src)
	if err != nil {
		return fmt.Errorf("resolving -src: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("reading -src: %w", err)
	}
	lad, err := loadLadder(*profile, *ladderFile)
	if err != nil {
		return err
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var store storage.Store
	if *record != "" {
		if store, err = storage.Open(ctx, *record, storage.Options{
			AccessKeyID:     os.Getenv("DIONYSIA_STORAGE_ACCESS_KEY_ID"),
			SecretAccessKey: os.Getenv("DIONYSIA_STORAGE_SECRET_ACCESS_KEY"),
		}); err != nil {
			return fmt.Errorf("opening -record: %w", err)
		}
	}

	res := Result{Streams: make([]StreamResult, *streams)}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range *streams {
		dir := filepath.Join(*out, "stream-"+strconv.Itoa(i))
		wg.Go(func() {
			res.Streams[i] = transcode(ctx, log, abs, dir, lad, *segment, *threads, *thumbs, store)
		})
	}
	wg.Wait()
	res.WallSeconds = time.Since(start).Seconds()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("writing result: %w", err)
	}
	for _, s := range res.Streams {
		if s.Error != "" {
			return fmt.Errorf("stream %s: %s", s.Dir, s.Error)
		}
	}
	return nil
}

func loadLadder(profile, file string) (ladder.Ladder, error) {
	if file == "" {
		l, err := ladder.Builtin(profile)
		if err != nil {
			return ladder.Ladder{}, fmt.Errorf("loading profile: %w", err)
		}
		return l, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return ladder.Ladder{}, fmt.Errorf("reading ladder: %w", err)
	}
	var l ladder.Ladder
	if err := json.Unmarshal(b, &l); err != nil {
		return ladder.Ladder{}, fmt.Errorf("decoding ladder %s: %w", file, err)
	}
	l = l.WithDefaults()
	if err := l.Validate(); err != nil {
		return ladder.Ladder{}, fmt.Errorf("ladder %s: %w", file, err)
	}
	return l, nil
}

// transcode runs one pipeline into one packager whose window holds every
// segment, so the whole output stays on disk for the quality measurement.
// With a store, the stream records as on a worker: the packager's files go
// through a recording.Uploader into the store; its reports go to a function
// that accepts them (the API's side, and the report's HTTP request, are not
// part of the measurement).
func transcode(ctx context.Context, log *slog.Logger, src, dir string, lad ladder.Ladder, segment time.Duration, threads int,
	thumbs time.Duration, store storage.Store) StreamResult {
	res := StreamResult{Dir: dir}
	var thumbsWritten atomic.Int64
	var up *recording.Uploader
	if store != nil {
		var err error
		up, err = recording.New(recording.Config{
			Store: store, AssetID: uuid.New(), StreamID: uuid.New(), SessionID: uuid.New(), WorkerID: "bench",
			Lease:    ownership.Lease{Token: 1, Nonce: "bench"},
			Held:     func() bool { return true },
			Report:   func(context.Context, job.RecordingReport) (int, error) { return http.StatusOK, nil },
			SpoolDir: filepath.Join(dir, ".recording"),
			Logger:   log,
		})
		if err != nil {
			res.Error = err.Error()
			return res
		}
	}
	pcfg := packager.Config{Dir: dir, SegmentDuration: segment, WindowSize: 10_000, Logger: log}
	onThumb := func(media.Thumbnail) { thumbsWritten.Add(1) }
	if up != nil {
		pcfg.OnFile = up.File
		onThumb = func(th media.Thumbnail) { thumbsWritten.Add(1); up.Thumbnail(th) }
	}
	pk, err := packager.New(pcfg)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	p, err := pipeline.New(pipeline.Config{
		StreamID:        filepath.Base(dir),
		Source:          job.Source{URL: "file://" + src},
		Ladder:          lad,
		SegmentDuration: segment,
		EncoderThreads:  threads,
		Logger:          log,
		// Thumbnails go where a worker writes them: the stream directory.
		ThumbnailInterval: thumbs,
		ThumbnailDir:      dir,
		OnThumbnail:       onThumb,
	})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	start := time.Now()
	runErr := p.Run(ctx, pk)
	closeErr := pk.Close(true)
	var recErr error
	if up != nil {
		recErr = up.Finish(ctx)
		st := up.Stats()
		res.RecordedFiles, res.RecordedBytes, res.LostSegments = st.UploadedFiles, st.UploadedBytes, st.LostSegments
	}
	res.WallSeconds = time.Since(start).Seconds()
	if err := errors.Join(runErr, closeErr, recErr); err != nil {
		res.Error = err.Error()
	}
	st := p.Stats()
	res.Skipped = st.Skipped
	res.Thumbnails = int(thumbsWritten.Load())
	tracks := map[string]packager.TrackStats{}
	for _, t := range pk.Stats().Tracks {
		tracks[t.Name] = t
	}
	for _, r := range st.Renditions {
		rr := RenditionResult{Name: r.Name, FramesOut: r.FramesOut, Segments: tracks[r.Name].Segments, Bytes: tracks[r.Name].Bytes}
		for _, rung := range lad.Renditions {
			if rung.Name == r.Name {
				rr.Width, rr.Height = rung.Width, rung.Height
				if res.MediaSeconds == 0 && rung.FrameRate > 0 {
					res.MediaSeconds = float64(r.FramesOut) / rung.FrameRate
				}
			}
		}
		res.Renditions = append(res.Renditions, rr)
	}
	return res
}
