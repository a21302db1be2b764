package packager

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultSegmentDuration = 2 * time.Second
	DefaultWindowSize      = 6
)

// Bounds of the window and of the segments kept after it (a 6-hour DVR
// window of 1 s segments is 21600 segments).
const (
	MaxWindowSize    = 100_000
	MaxExtraSegments = MaxWindowSize + 1
)

// Config configures one stream's packager. The zero value of every field means
// its default.
type Config struct {
	// Dir is the stream's directory, {data_dir}/{stream_id}. It is created if
	// missing. Required.
	Dir string
	// SegmentDuration is the target segment duration. Segments are cut at the
	// first keyframe at or after the target, so the encoder's keyframe interval
	// should divide it. Default 2 s.
	SegmentDuration time.Duration
	// WindowSize is the number of segments listed in the live playlists and the
	// MPD (the DVR window; the MPD's timeShiftBufferDepth is WindowSize
	// segment durations). Default 6.
	WindowSize int
	// ExtraSegments is how many segments are kept on disk after they left the
	// window, so a player holding an earlier playlist can still fetch them.
	// Default WindowSize+1: RFC 8216 §6.2.2 wants a segment that left the
	// playlist to stay available for its duration plus the playlist's
	// duration, and one segment is cut per segment duration. A negative value
	// keeps none.
	ExtraSegments int
	// OnFile, when set, is called once for every CMAF file the packager
	// completed, after it was renamed into place: each run's CMAF header of
	// each track (before that track's first segment of the run), then each
	// media segment. Calls are made in the order the files were written,
	// outside the packager's lock, but the packager waits for each to return:
	// it must be quick and never block (enqueue and return).
	OnFile func(File)
	// DisableHLS and DisableDASH turn off the HLS playlists or the DASH MPD.
	// The segments are the same for both; at least one must stay enabled.
	DisableHLS  bool
	DisableDASH bool
	// Logger receives warnings about dropped or misaligned input. Default: discard.
	Logger *slog.Logger
	// Clock gives wall-clock time for availabilityStartTime, publishTime,
	// EXT-X-PROGRAM-DATE-TIME and segment numbering. Default time.Now.
	Clock func() time.Time
}

// Validate reports whether the configuration can be used (after defaults).
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	if c.SegmentDuration < 100*time.Millisecond || c.SegmentDuration > time.Minute {
		errs = append(errs, fmt.Errorf("segment duration %s is outside [100ms, 1m]", c.SegmentDuration))
	}
	if c.WindowSize < 1 || c.WindowSize > MaxWindowSize {
		errs = append(errs, fmt.Errorf("window size %d is outside [1, %d]", c.WindowSize, MaxWindowSize))
	}
	if c.ExtraSegments > MaxExtraSegments {
		errs = append(errs, fmt.Errorf("extra segments %d is above %d", c.ExtraSegments, MaxExtraSegments))
	}
	if c.DisableHLS && c.DisableDASH {
		errs = append(errs, errors.New("both HLS and DASH are disabled"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.SegmentDuration = cmp.Or(c.SegmentDuration, DefaultSegmentDuration)
	c.WindowSize = cmp.Or(c.WindowSize, DefaultWindowSize)
	switch {
	case c.ExtraSegments == 0:
		c.ExtraSegments = c.WindowSize + 1
	case c.ExtraSegments < 0:
		c.ExtraSegments = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}
