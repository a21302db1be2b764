package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/workers/internal/gstinit"
	"github.com/dionysia/dionysia/workers/internal/hwprobe"
	"github.com/dionysia/dionysia/workers/internal/media"
)

// Errors Run returns, wrapped with details. ErrNoVideo, ErrUnsupportedCodec,
// ErrBadStream and ErrUnsupportedScheme are properties of the source that a
// restart will not fix; ErrSourceUnreachable and ErrStalled may be transient.
var (
	ErrNoVideo           = errors.New("source has no video stream")
	ErrUnsupportedCodec  = errors.New("unsupported video codec")
	ErrUnsupportedScheme = errors.New("unsupported source scheme")
	ErrBadStream         = errors.New("source stream cannot be demuxed or decoded")
	ErrSourceUnreachable = errors.New("source unreachable")
	ErrStalled           = errors.New("source stalled")
	ErrSink              = errors.New("sink failed")
	ErrMissingElement    = errors.New("GStreamer element not installed")
)

// Config configures one pipeline run. Zero values mean the documented
// defaults.
type Config struct {
	StreamID string     // used in logs and metric labels
	Source   job.Source // rtmp://, srt:// or file:// (tests, benchmarks)
	Ladder   ladder.Ladder
	// Backend names the elements to use, from hwprobe. Zero means the CPU
	// backend.
	Backend hwprobe.Backend
	// SegmentDuration is the packager's target segment length. A keyframe is
	// forced at every multiple of it (and of each rung's keyframe interval),
	// so segments of every rendition start on aligned IDR frames. It should
	// be a multiple of the keyframe interval. 0: keyframe intervals only.
	SegmentDuration time.Duration
	// EncoderThreads is x264's thread count per rendition. 0: the cores
	// divided among the renditions (1–4).
	EncoderThreads int
	// StartTimeout bounds the time to the first encoded frame. 0: 20 s.
	StartTimeout time.Duration
	// StallTimeout fails the run when no encoded frame was produced for this
	// long after the first one. 0: 10 s.
	StallTimeout time.Duration
	// StopTimeout is how long a cancelled run waits for EOS to flush the last
	// frames before tearing down. 0: 800 ms, so Run returns within 2 s even
	// when encoders are behind (tearing x264enc down drains its lookahead).
	StopTimeout time.Duration
	// SRTLatency is srtsrc's receive latency. 0: 200 ms.
	SRTLatency time.Duration
	// ThumbnailInterval is how often (in stream time) a decoded frame is
	// written to ThumbnailDir/thumbnail.jpg (ThumbnailFile), at most
	// ThumbnailMaxWidth wide; the first one as soon as the first frame is
	// decoded. 0: no thumbnails.
	ThumbnailInterval time.Duration
	// ThumbnailDir is where thumbnail.jpg is written: the stream's directory
	// (the packager's Dir). Required with ThumbnailInterval.
	ThumbnailDir string
	// OnThumbnail, when set, is called after each thumbnail was written, on
	// the thumbnail branch's streaming thread: frames are dropped while it
	// runs, never the renditions'.
	OnThumbnail func(media.Thumbnail)
	Logger      *slog.Logger
	Metrics     *Metrics // nil: no metrics
}

func (c Config) withDefaults() Config {
	if c.Backend.Encoder == "" {
		c.Backend = hwprobe.CPU()
	}
	c.Ladder = c.Ladder.WithDefaults()
	c.StartTimeout = cmp.Or(c.StartTimeout, 20*time.Second)
	c.StallTimeout = cmp.Or(c.StallTimeout, 10*time.Second)
	c.StopTimeout = cmp.Or(c.StopTimeout, 800*time.Millisecond)
	c.SRTLatency = cmp.Or(c.SRTLatency, 200*time.Millisecond)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.Ladder.Validate(); err != nil {
		return err
	}
	if c.SegmentDuration < 0 {
		return fmt.Errorf("segment duration must not be negative, got %s", c.SegmentDuration)
	}
	if c.ThumbnailInterval < 0 {
		return fmt.Errorf("thumbnail interval must not be negative, got %s", c.ThumbnailInterval)
	}
	if c.ThumbnailInterval > 0 && c.ThumbnailDir == "" {
		return errors.New("thumbnails need a directory (ThumbnailDir)")
	}
	if _, err := AuthURL(c.Source); err != nil {
		return err
	}
	return nil
}

// audioWait is how long the renditions wait for the source's audio stream
// to appear before the tracks are announced without audio.
const audioWait = 2 * time.Second

// Run builds a pipeline from cfg, runs it until the stream ends, fails or ctx
// is cancelled, and tears it down. See Pipeline.Run.
func Run(ctx context.Context, cfg Config, sink media.Sink) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	return p.Run(ctx, sink)
}

// Pipeline is one run of the transcoder. Create it with New, run it once with
// Run; Stats may be called at any time, from any goroutine.
//
// It only wires and supervises its parts, each of which keeps its own state
// under its own lock (see doc.go): the source, the video decode, the
// renditions, the keyframe policy, the audio branch, the track gate, the
// failure and the stats.
type Pipeline struct {
	cfg Config
	log *slog.Logger
	red redactor
	ran atomic.Bool

	failure    *failure
	stats      *runStats
	health     *healthMeter
	keyframes  *keyframePolicy
	renditions *renditionSet
	video      *videoDecode
	audio      *audioBranch
	source     *source
	gate       *trackGate

	graph    *graph // set by build
	stopping chan struct{}
	stopOnce sync.Once
}

// New validates cfg and prepares a pipeline. It builds no GStreamer objects.
func New(cfg Config) (*Pipeline, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating pipeline config: %w", err)
	}
	u, err := AuthURL(cfg.Source)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("stream_id", cfg.StreamID, "source", cfg.Source)
	p := &Pipeline{
		cfg:       cfg,
		log:       log,
		red:       redactor{url: u, src: cfg.Source},
		failure:   newFailure(log),
		stats:     &runStats{},
		health:    newHealthMeter(cfg.SegmentDuration, time.Now()),
		keyframes: &keyframePolicy{segment: cfg.SegmentDuration},
		stopping:  make(chan struct{}),
	}
	// The parts, wired to the ones they call. Their graph is set by build.
	p.gate = &trackGate{failure: p.failure, stopping: p.stopping, ready: make(chan struct{})}
	p.renditions = &renditionSet{log: log, ladder: cfg.Ladder, backend: cfg.Backend, threads: cfg.EncoderThreads,
		keyframes: p.keyframes, gate: p.gate, failure: p.failure, stats: p.stats, health: p.health}
	p.video = &videoDecode{log: log, backend: cfg.Backend, renditions: p.renditions, gate: p.gate, failure: p.failure, health: p.health}
	p.audio = &audioBranch{log: log, cfg: cfg.Ladder.Audio, red: p.red, gate: p.gate, failure: p.failure}
	live := !finite(cfg.Source)
	p.audio.beforeVideo = func() bool { return live && !p.video.isBuilt() }
	p.source = &source{log: log, url: u, src: cfg.Source, srtLatency: cfg.SRTLatency, live: live,
		video: p.video, audio: p.audio, gate: p.gate, failure: p.failure, health: p.health}
	p.gate.source, p.gate.renditions, p.gate.audio = p.source, p.renditions, p.audio
	if cfg.ThumbnailInterval > 0 {
		if err := p.attach(newThumbnailer(log, cfg.ThumbnailDir, cfg.ThumbnailInterval, cfg.OnThumbnail)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Run runs the pipeline and blocks until:
//   - the stream ended (EOS: every frame was handed to sink): returns nil;
//   - it failed: returns an error wrapping one of the Err* values with the
//     reason (the source's own error text, with credentials redacted);
//   - ctx was cancelled: EOS is sent so the last frames flush (bounded by
//     StopTimeout), then the pipeline is torn down; returns ctx.Err() within
//     about 2 s.
//
// sink.Tracks is called once, before the first frame, when the renditions
// and the audio are known. Every GStreamer object is released on return.
func (p *Pipeline) Run(ctx context.Context, sink media.Sink) error {
	if p.ran.Swap(true) {
		return errRan
	}
	p.gate.sink = sink

	gstinit.Init()
	p.cfg.Metrics.add(p)
	defer p.cfg.Metrics.remove(p)
	defer p.teardown()

	if err := p.build(); err != nil {
		return err
	}
	pipe := p.graph.pipeline()
	bus := newBus(pipe, p.log, p.red, p.audio)
	if err := pipe.SetState(gst.StatePlaying); err != nil {
		// The reason is on the bus (e.g. a missing file).
		if msg := bus.popFiltered(100*time.Millisecond, gst.MessageError); msg != nil {
			return p.failure.fail(bus.classify(msg))
		}
		return p.failure.fail(fmt.Errorf("starting pipeline: %w", err))
	}
	p.log.Info("pipeline started", "backend", p.cfg.Backend.Encoder)
	return p.loop(ctx, bus)
}

// build creates the GStreamer pipeline and its source; the rest is built
// from the streaming threads as the source's streams appear.
func (p *Pipeline) build() error {
	g, err := newGraph(p.log)
	if err != nil {
		return err
	}
	p.graph = g
	p.renditions.graph, p.video.graph, p.audio.graph, p.source.graph = g, g, g, g
	return p.source.build()
}

// loop supervises the run: it reads the bus and enforces the start, stall
// and audio timeouts.
func (p *Pipeline) loop(ctx context.Context, bus *bus) error {
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return p.stopGracefully(ctx, bus)
		case <-p.failure.done:
			return p.failure.err
		default:
		}
		now := time.Now()
		// A demuxer may announce audio and never deliver it (flvdemux waits
		// for it, blocking video behind it), or the audio may not decode:
		// after audioWait, go on without.
		if built, at := p.renditions.isBuilt(); built && !p.gate.isOpen() && now.Sub(at) > audioWait {
			if hadBranch, gaveUp := p.audio.giveUpWaiting(); gaveUp {
				if hadBranch {
					p.log.Warn("the audio produced nothing: continuing without audio", "waited", audioWait)
				} else {
					p.log.Warn("no audio stream appeared: continuing without audio", "waited", audioWait)
				}
				p.gate.open()
			}
		}
		last := p.stats.lastVideo()
		switch {
		case last.IsZero() && now.Sub(start) > p.cfg.StartTimeout:
			video, unsupported, audioErr := p.video.isBuilt(), p.source.unsupportedVideo(), p.audio.err()
			switch {
			case unsupported != "" && !video:
				return p.failure.fail(fmt.Errorf("%w %s (H.264 and H.265 are supported)", ErrUnsupportedCodec, unsupported))
			case !video && audioErr != "":
				return p.failure.fail(fmt.Errorf("%w: audio: %s (and no video within %s)", ErrBadStream, audioErr, p.cfg.StartTimeout))
			case !video:
				return p.failure.fail(fmt.Errorf("%w within %s", ErrNoVideo, p.cfg.StartTimeout))
			}
			return p.failure.fail(fmt.Errorf("%w: no video encoded within %s", ErrStalled, p.cfg.StartTimeout))
		case !last.IsZero() && now.Sub(last) > p.cfg.StallTimeout:
			return p.failure.fail(fmt.Errorf("%w: no video for %s", ErrStalled, p.cfg.StallTimeout))
		}
		msg := bus.pop(50 * time.Millisecond)
		if msg == nil {
			continue
		}
		switch msg.Type() {
		case gst.MessageEOS:
			if err := p.failure.failed(); err != nil {
				return err
			}
			if p.stats.lastVideo().IsZero() {
				p.source.onNoMorePads() // fails the run when there was no usable video
				if err := p.failure.failed(); err != nil {
					return err
				}
				return p.failure.fail(fmt.Errorf("%w: the stream ended before any video was encoded", ErrBadStream))
			}
			p.log.Info("stream ended")
			return nil
		case gst.MessageError:
			if p.audio.onError(msg) {
				continue
			}
			return p.failure.fail(bus.classify(msg))
		case gst.MessageWarning:
			bus.warn(msg)
		}
	}
}

// stopGracefully sends EOS so encoders flush their last frames to the sink,
// waits for it up to StopTimeout and returns ctx's error.
func (p *Pipeline) stopGracefully(ctx context.Context, bus *bus) error {
	if p.gate.isOpen() {
		p.graph.pipeline().SendEvent(gst.NewEOSEvent())
		start := time.Now()
		deadline := start.Add(p.cfg.StopTimeout)
		flushed := false
		for !flushed && time.Now().Before(deadline) {
			flushed = bus.popFiltered(50*time.Millisecond, gst.MessageEOS|gst.MessageError) != nil
		}
		p.log.Debug("stopping: EOS sent", "flushed", flushed, "took", time.Since(start))
	} // else nothing reached the sink yet: nothing to flush
	p.log.Info("pipeline stopped", "reason", context.Cause(ctx))
	return ctx.Err()
}

// teardown stops the pipeline and drops every reference to GStreamer
// objects, so the Go finalizers release them.
func (p *Pipeline) teardown() {
	p.stopOnce.Do(func() { close(p.stopping) })
	st := p.Stats() // before NULL: videorate resets its counters
	if p.graph == nil {
		p.stats.finish(st)
		return
	}
	if pipe := p.graph.pipeline(); pipe != nil {
		start := time.Now()
		_ = pipe.SetState(gst.StateNull)
		p.log.Debug("pipeline torn down", "took", time.Since(start))
	}
	p.stats.finish(st)
	p.graph.close()
	p.source.release()
	p.video.release()
	p.renditions.release()
	p.audio.release()
}
