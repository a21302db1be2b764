// Package transcode measures the worker's transcoding path (the GStreamer
// pipeline and the CMAF packager, run by workers/cmd/dionysia-bench-transcode)
// against an ffmpeg command doing the same job: CPU per media second,
// real-time factor, peak memory, output quality, and how many streams run
// at once in real time.
package transcode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/bench/internal/measure"
	"github.com/dionysia/dionysia/pkg/ladder"
)

// Side names which transcoder ran.
type Side string

// The two sides.
const (
	Ours Side = "dionysia"
	Ref  Side = "ffmpeg"
)

// Config says what to transcode and with what.
type Config struct {
	Clip          string        // input file
	ClipSeconds   float64       // its duration
	HasAudio      bool          // whether it has an audio stream
	Bin           string        // dionysia-bench-transcode
	Work          string        // scratch directory
	Segment       time.Duration // segment duration and keyframe cadence
	Cores         int
	Log           func(format string, args ...any)
	KeepOutputDir bool
	// ThumbnailInterval makes our side write the live thumbnail as a worker
	// does, every this much stream time (0: off, the default).
	ThumbnailInterval time.Duration
	// RecordStore makes our side record as a worker does, into this store
	// URL (RecordEnv: its credentials); empty: off.
	RecordStore string
	RecordEnv   []string
}

// Run is one measured transcode of the clip.
type Run struct {
	Side        Side
	Usage       measure.Usage
	MediaSecs   float64
	OutputDir   string
	Renditions  []Rendition
	X264Options string
	Thumbnails  int // thumbnails written (ours, with ThumbnailInterval)
	// Recorded is what our side uploaded (with RecordStore).
	RecordedFiles, RecordedBytes, LostSegments int64
}

// CPUPerMediaSecond is CPU seconds spent per second of media.
func (r Run) CPUPerMediaSecond() float64 { return r.Usage.CPU.Seconds() / r.MediaSecs }

// RealtimeFactor is media seconds per wall second.
func (r Run) RealtimeFactor() float64 { return r.MediaSecs / r.Usage.Wall.Seconds() }

// benchOutput is dionysia-bench-transcode's JSON.
type benchOutput struct {
	Streams []struct {
		Dir           string  `json:"dir"`
		WallSeconds   float64 `json:"wall_seconds"`
		MediaSeconds  float64 `json:"media_seconds"`
		Skipped       []string
		Thumbnails    int    `json:"thumbnails"`
		RecordedFiles int64  `json:"recorded_files"`
		RecordedBytes int64  `json:"recorded_bytes"`
		LostSegments  int64  `json:"lost_segments"`
		Error         string `json:"error"`
	} `json:"streams"`
}

func writeLadder(dir string, l ladder.Ladder) (string, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "ladder.json")
	return p, os.WriteFile(p, b, 0o644)
}

// TranscodeOurs runs the worker's pipeline on the clip with streams copies at
// once in one process.
func (c Config) TranscodeOurs(ctx context.Context, l ladder.Ladder, streams int, tag string) (Run, error) {
	dir := filepath.Join(c.Work, tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Run{}, err
	}
	lf, err := writeLadder(dir, l)
	if err != nil {
		return Run{}, err
	}
	args := []string{"-src", c.Clip, "-out", filepath.Join(dir, "out"), "-ladder", lf,
		"-streams", strconv.Itoa(streams), "-segment", c.Segment.String(), "-thumbnail-interval", c.ThumbnailInterval.String()}
	if c.RecordStore != "" {
		args = append(args, "-record", c.RecordStore)
	}
	res, err := measure.Run(ctx, "", c.RecordEnv, c.Bin, args...)
	if err != nil {
		return Run{}, err
	}
	var out benchOutput
	if err := json.Unmarshal(res.Stdout, &out); err != nil {
		return Run{}, fmt.Errorf("decoding dionysia-bench-transcode output: %w", err)
	}
	run := Run{Side: Ours, Usage: res.Usage, MediaSecs: c.ClipSeconds, OutputDir: filepath.Join(dir, "out", "stream-0")}
	for _, s := range out.Streams {
		if s.Error != "" {
			return run, fmt.Errorf("dionysia-bench-transcode: %s", s.Error)
		}
		run.Thumbnails += s.Thumbnails
		run.RecordedFiles += s.RecordedFiles
		run.RecordedBytes += s.RecordedBytes
		run.LostSegments += s.LostSegments
		if c.RecordStore != "" && s.RecordedFiles == 0 {
			return run, fmt.Errorf("dionysia-bench-transcode recorded nothing into %s", c.RecordStore)
		}
		if c.ThumbnailInterval > 0 && s.Thumbnails == 0 {
			return run, fmt.Errorf("dionysia-bench-transcode wrote no thumbnail every %s", c.ThumbnailInterval)
		}
		if len(s.Skipped) > 0 {
			return run, fmt.Errorf("dionysia-bench-transcode skipped renditions: %v", s.Skipped)
		}
	}
	l = l.WithDefaults()
	for _, r := range l.Renditions {
		run.Renditions = append(run.Renditions, Rendition{Name: r.Name, Width: r.Width, Height: r.Height, FrameRate: r.FrameRate,
			Playlist: filepath.Join(run.OutputDir, r.Name, "index.m3u8")})
	}
	if len(l.Renditions) > 0 {
		run.X264Options = firstX264Options(filepath.Join(run.OutputDir, l.Renditions[0].Name), ".m4s")
	}
	return run, nil
}

// TranscodeRef runs the ffmpeg reference on the clip, streams processes at
// once. The usage is that of the first process; the wall time is the
// slowest one's.
func (c Config) TranscodeRef(ctx context.Context, l ladder.Ladder, streams int, tag string) (Run, error) {
	args := FFmpegArgs(c.Clip, l, c.Segment, c.Cores, c.HasAudio)
	runs := make([]measure.Result, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		dir := filepath.Join(c.Work, tag, "out", "stream-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Run{}, err
		}
		wg.Go(func() { runs[i], errs[i] = measure.Run(ctx, dir, nil, "ffmpeg", args...) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Run{}, err
		}
	}
	run := Run{Side: Ref, Usage: runs[0].Usage, MediaSecs: c.ClipSeconds, OutputDir: filepath.Join(c.Work, tag, "out", "stream-0")}
	for _, r := range runs {
		run.Usage.Wall = max(run.Usage.Wall, r.Wall)
	}
	l = l.WithDefaults()
	for i, r := range l.Renditions {
		run.Renditions = append(run.Renditions, Rendition{Name: r.Name, Width: r.Width, Height: r.Height, FrameRate: r.FrameRate,
			Playlist: filepath.Join(run.OutputDir, fmt.Sprintf("media_%d.m3u8", i))})
	}
	run.X264Options = firstX264Options(run.OutputDir, "chunk-stream0-")
	return run, nil
}

// firstX264Options reads x264's option string from the first matching file
// (by name order) in dir.
func firstX264Options(dir, match string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range entries {
		if strings.Contains(e.Name(), match) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err == nil {
			if o := X264Options(b); o != "" {
				return o
			}
		}
	}
	return ""
}

// Transcode runs one side.
func (c Config) Transcode(ctx context.Context, side Side, l ladder.Ladder, streams int, tag string) (Run, error) {
	if side == Ours {
		return c.TranscodeOurs(ctx, l, streams, tag)
	}
	return c.TranscodeRef(ctx, l, streams, tag)
}

// Clean removes a run's scratch directory.
func (c Config) Clean(tag string) {
	if !c.KeepOutputDir {
		_ = os.RemoveAll(filepath.Join(c.Work, tag))
	}
}

// DensityStep is one step of a ramp: streams at once and the slowest
// stream's real-time factor.
type DensityStep struct {
	Streams int
	RTF     float64
	CPU     time.Duration
}

// Density ramps the number of concurrent streams from 1 until the slowest
// one falls below real time (or max is reached) and returns the steps and
// the largest count that kept up (0 if even one stream did not).
func (c Config) Density(ctx context.Context, side Side, l ladder.Ladder, maxStreams int, tag string) (int, []DensityStep, error) {
	var steps []DensityStep
	sustained := 0
	for n := 1; n <= maxStreams; n++ {
		t := fmt.Sprintf("%s-%s-n%d", tag, side, n)
		run, err := c.Transcode(ctx, side, l, n, t)
		c.Clean(t)
		if err != nil {
			return sustained, steps, err
		}
		step := DensityStep{Streams: n, RTF: run.RealtimeFactor(), CPU: run.Usage.CPU}
		steps = append(steps, step)
		c.Log("    %s: %d stream(s) at once: slowest %.2f× real time", side, n, step.RTF)
		if step.RTF < 1.0 {
			break
		}
		sustained = n
	}
	return sustained, steps, nil
}
