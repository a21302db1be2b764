// Package pipeline is the worker's GStreamer transcoder. One Pipeline pulls
// one live stream from the edge (RTMP or SRT; file:// for tests), decodes its
// video once, scales and encodes it into every rendition of the ladder with
// keyframes on the same timestamps in every rendition, encodes the audio once
// to stereo AAC, and hands the encoded access units to a media.Sink (the
// packager).
//
// Layout, with the CPU elements (GPU ones in brackets):
//
//	source ! parsebin ─┬─ queue ! avdec_h264 [nvh264dec] ! tee ─┬─ queue ! videorate ! caps(fps)
//	                   │                                         │   ! videoconvertscale ! caps(I420,WxH)
//	                   │                                         │   [cudaupload ! cudascale ! cudaconvert ! caps(NV12)]
//	                   │                                         │   ! x264enc [nvh264enc] ! caps(high) ! h264parse ! appsink
//	                   │                                         └─ ... one branch per rendition
//	                   └─ queue ! avdec_aac ! audioconvert ! audioresample ! caps(2ch,48k) ! avenc_aac ! appsink
//
// AAC that reaches the worker without its channel layout (a program config
// element the edge dropped) is repaired before it is decoded (aacfix.go,
// audio.go). Audio that cannot be decoded is given up: the run goes on with
// video only, and a failure of the audio branch never stops the video.
//
// Renditions are decided when the source's video caps are known: rungs larger
// than the source are skipped, never upscaled. Every pad parsebin exposes is
// linked, to a branch or to a fakesink, so no stream fails "not-linked".
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"

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
	Logger     *slog.Logger
	Metrics    *Metrics // nil: no metrics
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
type Pipeline struct {
	cfg Config
	log *slog.Logger
	url string // authenticated: never log

	mu          sync.Mutex
	ran, closed bool
	sink        media.Sink
	pipe        *gst.Pipeline
	demux       *gst.Element
	signals     []glib.SignalHandle
	videoBuilt  bool
	audioBuilt  bool
	// audioPending: the audio pad waits for its first buffer, which tells
	// how to decode it (see aacfix.go).
	audioPending bool
	// audioGone: the audio was given up (undecodable, or its branch failed):
	// the run goes on without it.
	audioGone    bool
	audioFailed  bool         // an audio element posted an error
	audioFlowing bool         // the first encoded audio frame came out
	audioSink    *gst.Element // the audio appsink, once built
	noMorePads   bool
	rungsBuilt   bool
	exposeAll    bool // the demuxer exposes every stream before data flows (parsebin)
	tee          *gst.Element
	unsupported  string // caps of a video stream no decoder handles
	rungs        []*rungRun
	videoTracks  []media.VideoTrack
	audioTrack   *media.AudioTrack
	skipped      []string
	final        *Stats

	ready     chan struct{} // closed once sink.Tracks succeeded
	readyOnce sync.Once
	gateOpen  bool          // Tracks was called (or is being called): late audio is dropped
	rungsAt   time.Time     // when the renditions were built
	stopping  chan struct{} // closed on teardown: releases blocked callbacks
	stopOnce  sync.Once
	failed    chan struct{}
	failOnce  sync.Once
	failErr   error

	// audioCut is set when the audio branch failed (see addAudioFirewall):
	// the demuxer's audio buffers are dropped from then on.
	audioCut atomic.Bool
	audioErr atomic.Pointer[string] // that error, for the log and for ErrNoVideo

	origin   atomic.Int64 // first PTS seen by an encoder, +1 (0: none yet)
	lastOut  atomic.Int64 // wall time (UnixNano) of the last video AU
	audioOut atomic.Uint64
}

// rungRun is the run-time state of one rendition.
type rungRun struct {
	rung
	index    int
	rate     *gst.Element // videorate, read for stats; nil after teardown
	out      atomic.Uint64
	meter    rate
	prevRel  time.Duration // keyframer state, encoder streaming thread only
	havePrev bool
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
	return &Pipeline{
		cfg:      cfg,
		log:      cfg.Logger.With("stream_id", cfg.StreamID, "source", cfg.Source),
		url:      u,
		ready:    make(chan struct{}),
		stopping: make(chan struct{}),
		failed:   make(chan struct{}),
	}, nil
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
	p.mu.Lock()
	if p.ran {
		p.mu.Unlock()
		return errors.New("pipeline already ran")
	}
	p.ran, p.sink = true, sink
	p.mu.Unlock()

	gstinit.Init()
	p.cfg.Metrics.add(p)
	defer p.cfg.Metrics.remove(p)
	defer p.teardown()

	if err := p.build(); err != nil {
		return err
	}
	bus := p.pipe.GetPipelineBus()
	bus.SetSyncHandler(func(msg *gst.Message) gst.BusSyncReply {
		// Record an audio element's error from the thread that posts it,
		// before a demuxer error it may cause reaches the loop.
		if msg.Type() == gst.MessageError && isAudioElement(msg.Source()) {
			p.audioCut.Store(true)
			text := p.redact(msg.ParseError().Error())
			p.audioErr.CompareAndSwap(nil, &text)
		}
		return gst.BusPass
	})
	if err := p.pipe.SetState(gst.StatePlaying); err != nil {
		// The reason is on the bus (e.g. a missing file).
		if msg := bus.TimedPopFiltered(gst.ClockTime(100*time.Millisecond), gst.MessageError); msg != nil {
			return p.fail(p.busError(msg))
		}
		return p.fail(fmt.Errorf("starting pipeline: %w", err))
	}
	p.log.Info("pipeline started", "backend", p.cfg.Backend.Encoder)
	return p.loop(ctx, bus)
}

func (p *Pipeline) loop(ctx context.Context, bus *gst.Bus) error {
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return p.stopGracefully(ctx, bus)
		case <-p.failed:
			return p.failErr
		default:
		}
		now := time.Now()
		p.mu.Lock()
		// A demuxer may announce audio and never deliver it (flvdemux waits
		// for it, blocking video behind it), or the audio may not decode:
		// after audioWait, go on without.
		waited := p.rungsBuilt && !p.gateOpen && !p.audioFlowing && !p.audioGone && now.Sub(p.rungsAt) > audioWait
		built := p.audioBuilt
		if waited {
			p.audioGone = true
		}
		p.mu.Unlock()
		if waited {
			if built {
				p.audioCut.Store(true)
				p.log.Warn("the audio produced nothing: continuing without audio", "waited", audioWait)
			} else {
				p.log.Warn("no audio stream appeared: continuing without audio", "waited", audioWait)
			}
			p.openGate()
		}
		last := p.lastOut.Load()
		switch {
		case last == 0 && now.Sub(start) > p.cfg.StartTimeout:
			p.mu.Lock()
			video, unsupported := p.videoBuilt, p.unsupported
			p.mu.Unlock()
			switch {
			case unsupported != "" && !video:
				return p.fail(fmt.Errorf("%w %s (H.264 and H.265 are supported)", ErrUnsupportedCodec, unsupported))
			case !video && p.audioErr.Load() != nil:
				return p.fail(fmt.Errorf("%w: audio: %s (and no video within %s)", ErrBadStream, *p.audioErr.Load(), p.cfg.StartTimeout))
			case !video:
				return p.fail(fmt.Errorf("%w within %s", ErrNoVideo, p.cfg.StartTimeout))
			}
			return p.fail(fmt.Errorf("%w: no video encoded within %s", ErrStalled, p.cfg.StartTimeout))
		case last != 0 && now.Sub(time.Unix(0, last)) > p.cfg.StallTimeout:
			return p.fail(fmt.Errorf("%w: no video for %s", ErrStalled, p.cfg.StallTimeout))
		}
		msg := bus.TimedPop(gst.ClockTime(50 * time.Millisecond))
		if msg == nil {
			continue
		}
		switch msg.Type() {
		case gst.MessageEOS:
			select {
			case <-p.failed:
				return p.failErr
			default:
			}
			if p.lastOut.Load() == 0 {
				p.onNoMorePads() // fails the run when there was no usable video
				select {
				case <-p.failed:
					return p.failErr
				default:
				}
				return p.fail(fmt.Errorf("%w: the stream ended before any video was encoded", ErrBadStream))
			}
			p.log.Info("stream ended")
			return nil
		case gst.MessageError:
			if p.onAudioError(msg) {
				continue
			}
			return p.fail(p.busError(msg))
		case gst.MessageWarning:
			w := msg.ParseWarning()
			p.log.Warn("pipeline warning", "element", msg.Source(), "warning", p.redact(w.Error()))
		}
	}
}

// stopGracefully sends EOS so encoders flush their last frames to the sink,
// waits for it up to StopTimeout and returns ctx's error.
func (p *Pipeline) stopGracefully(ctx context.Context, bus *gst.Bus) error {
	select {
	case <-p.ready:
		p.pipe.SendEvent(gst.NewEOSEvent())
		start := time.Now()
		deadline := start.Add(p.cfg.StopTimeout)
		flushed := false
		for !flushed && time.Now().Before(deadline) {
			flushed = bus.TimedPopFiltered(gst.ClockTime(50*time.Millisecond), gst.MessageEOS|gst.MessageError) != nil
		}
		p.log.Debug("stopping: EOS sent", "flushed", flushed, "took", time.Since(start))
	default: // nothing reached the sink yet: nothing to flush
	}
	p.log.Info("pipeline stopped", "reason", context.Cause(ctx))
	return ctx.Err()
}

// fail records the run's first error and returns the recorded one.
func (p *Pipeline) fail(err error) error {
	p.failOnce.Do(func() {
		p.failErr = err
		close(p.failed)
		p.log.Warn("pipeline failed", "err", err)
	})
	return p.failErr
}

// teardown stops the pipeline and drops every reference to GStreamer
// objects, so the Go finalizers release them.
func (p *Pipeline) teardown() {
	p.stopOnce.Do(func() { close(p.stopping) })
	st := p.Stats() // before NULL: videorate resets its counters
	p.mu.Lock()
	pipe := p.pipe
	p.mu.Unlock()
	if pipe != nil {
		start := time.Now()
		_ = pipe.SetState(gst.StateNull)
		p.log.Debug("pipeline torn down", "took", time.Since(start))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.final = &st
	p.closed = true
	if p.demux != nil {
		for _, h := range p.signals {
			p.demux.HandlerDisconnect(h)
		}
	}
	for _, r := range p.rungs {
		r.rate = nil
	}
	p.pipe, p.demux, p.tee, p.signals, p.audioSink = nil, nil, nil, nil, nil
}

// make creates an element, applies props (skipping, with a warning, those
// the element does not have) and adds it to the pipeline.
func (p *Pipeline) make(factory, name string, props ...prop) (*gst.Element, error) {
	e, err := gst.NewElementWithName(factory, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMissingElement, factory)
	}
	trackObject(e)
	for _, pr := range props {
		if _, err := e.GetPropertyType(pr.Name); err != nil {
			p.log.Warn("element lacks property", "element", factory, "property", pr.Name)
			continue
		}
		e.SetArg(pr.Name, pr.Value)
	}
	if err := p.pipe.Add(e); err != nil {
		return nil, fmt.Errorf("adding %s: %w", factory, err)
	}
	return e, nil
}

// chain creates elements in order and links each to the next.
func (p *Pipeline) chain(specs []elemSpec) ([]*gst.Element, error) {
	out := make([]*gst.Element, 0, len(specs))
	for _, s := range specs {
		e, err := p.make(s.factory, s.name, s.props...)
		if err != nil {
			return nil, err
		}
		if n := len(out); n > 0 {
			if err := out[n-1].Link(e); err != nil {
				return nil, fmt.Errorf("linking %s to %s: %w", specs[n-1].factory, s.factory, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

type elemSpec struct {
	factory, name string
	props         []prop
}

func spec(factory string, props ...prop) elemSpec { return elemSpec{factory: factory, props: props} }

func capsSpec(caps string) elemSpec { return spec("capsfilter", prop{"caps", caps}) }

// syncStates starts elements added to a playing pipeline, downstream first.
func syncStates(elems []*gst.Element) {
	for i := len(elems) - 1; i >= 0; i-- {
		elems[i].SyncStateWithParent()
	}
}

func (p *Pipeline) build() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pipe, err := gst.NewPipeline("")
	if err != nil {
		return fmt.Errorf("creating pipeline: %w", err)
	}
	trackObject(pipe.Element)
	p.pipe = pipe
	src, demuxer, err := p.makeSource()
	if err != nil {
		return err
	}
	demux, err := p.make(demuxer, "demux")
	if err != nil {
		return err
	}
	if err := src.Link(demux); err != nil {
		return fmt.Errorf("linking source to %s: %w", demuxer, err)
	}
	p.exposeAll = demuxer == "parsebin"
	p.demux = demux
	h1, err := demux.Connect("pad-added", func(_ *gst.Element, pad *gst.Pad) { p.onPadAdded(pad) })
	if err != nil {
		return fmt.Errorf("connecting pad-added: %w", err)
	}
	h2, err := demux.Connect("no-more-pads", func(_ *gst.Element) { p.onNoMorePads() })
	if err != nil {
		return fmt.Errorf("connecting no-more-pads: %w", err)
	}
	p.signals = []glib.SignalHandle{h1, h2}
	return nil
}

// makeSource creates the source element and names the demuxer to put after
// it: flvdemux for RTMP and tsdemux for SRT, which emit no-more-pads once
// every stream is known; parsebin for files, which finds the container.
func (p *Pipeline) makeSource() (*gst.Element, string, error) {
	u, err := url.Parse(p.url)
	if err != nil {
		return nil, "", fmt.Errorf("parsing source url %s: %w", p.cfg.Source, err)
	}
	switch u.Scheme {
	case "rtmp", "rtmps":
		// Set the parts rather than "location" so the query (the mediamtx
		// credential) stays on the stream name.
		path := strings.Trim(u.Path, "/")
		i := strings.LastIndex(path, "/")
		app, stream := "", path
		if i >= 0 {
			app, stream = path[:i], path[i+1:]
		}
		if u.RawQuery != "" {
			stream += "?" + u.RawQuery
		}
		port := u.Port()
		if port == "" {
			port = "1935"
		}
		e, err := p.make("rtmp2src", "source",
			prop{"scheme", u.Scheme}, prop{"host", u.Hostname()}, prop{"port", port},
			prop{"application", app}, prop{"stream", stream}, prop{"timeout", "5"})
		return e, "flvdemux", err
	case "srt":
		q := u.Query()
		sid := q.Get("streamid")
		q.Del("streamid")
		u.RawQuery = q.Encode()
		e, err := p.make("srtsrc", "source",
			prop{"uri", u.String()}, prop{"streamid", sid}, prop{"mode", "caller"},
			prop{"latency", strconv.Itoa(int(p.cfg.SRTLatency / time.Millisecond))},
			prop{"auto-reconnect", "false"}, prop{"wait-for-connection", "false"})
		return e, "tsdemux", err
	case "file":
		e, err := p.make("filesrc", "source", prop{"location", u.Path})
		return e, "parsebin", err
	default:
		return nil, "", fmt.Errorf("%w %q", ErrUnsupportedScheme, u.Scheme)
	}
}

var (
	reFramerate = regexp.MustCompile(`framerate=\(fraction\)(\d+)/(\d+)`)
	reWidth     = regexp.MustCompile(`width=\(int\)(\d+)`)
	reHeight    = regexp.MustCompile(`height=\(int\)(\d+)`)
	reMPEGVer   = regexp.MustCompile(`mpegversion=\(int\)(\d+)`)
)

func capsInt(re *regexp.Regexp, caps string) int {
	m := re.FindStringSubmatch(caps)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (p *Pipeline) onPadAdded(pad *gst.Pad) {
	caps := pad.GetCurrentCaps()
	if caps == nil {
		caps = pad.QueryCaps(nil)
	}
	if caps == nil || caps.GetSize() == 0 {
		p.mu.Lock()
		p.dropLocked(pad)
		p.mu.Unlock()
		return
	}
	name := caps.GetStructureAt(0).Name()
	capsStr := caps.String()
	// parsebin exposes all of a source's streams at once, then lets data
	// flow, and (unlike flvdemux and tsdemux) emits no no-more-pads: the
	// first buffer or EOS on any exposed pad means every stream is known.
	if p.exposeAll {
		p.addExposedProbe(pad)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var err error
	switch {
	case name == "video/x-h264" || name == "video/x-h265":
		if p.videoBuilt {
			p.log.Info("ignoring an extra video stream", "caps", name)
			p.dropLocked(pad)
			break
		}
		if err = p.buildVideoLocked(pad, name); err != nil {
			p.dropLocked(pad)
			break
		}
		p.videoBuilt = true
	case strings.HasPrefix(name, "video/") || strings.HasPrefix(name, "image/"):
		p.log.Warn("unsupported video stream", "caps", name)
		if p.unsupported == "" {
			p.unsupported = name
		}
		p.dropLocked(pad)
	case strings.HasPrefix(name, "audio/"):
		if p.gateOpen && !p.audioBuilt {
			p.log.Warn("audio appeared after the tracks were announced without it: dropping it", "caps", name)
			p.dropLocked(pad)
			break
		}
		if p.audioBuilt {
			p.log.Info("ignoring an extra audio stream", "caps", name)
			p.dropLocked(pad)
			break
		}
		if p.audioPending || p.audioGone {
			p.log.Info("ignoring an extra audio stream", "caps", name)
			p.dropLocked(pad)
			break
		}
		check, asc, aerr := aacCheck(name, capsStr)
		switch {
		case aerr != nil:
			p.giveUpAudioLocked(pad, name, aerr)
		case check != aacOK:
			// Decide on the first buffer, which holds the channel elements.
			p.audioPending = true
			p.addAACProbe(pad, name, capsStr, check, asc)
		default:
			if aerr := p.buildAudioLocked(pad, name, capsStr, aacFixup{}); aerr != nil {
				p.giveUpAudioLocked(pad, name, aerr)
				break
			}
			p.audioBuilt = true
		}
	default:
		p.dropLocked(pad)
	}
	p.mu.Unlock()
	if err != nil {
		p.fail(err)
		return
	}
	p.maybeOpenGate()
}

func (p *Pipeline) addExposedProbe(pad *gst.Pad) {
	pad.AddProbe(gst.PadProbeTypeBuffer|gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		if info.Type()&gst.PadProbeTypeBuffer == 0 {
			if ev := info.GetEvent(); ev == nil || ev.Type() != gst.EventTypeEOS {
				return gst.PadProbeOK
			}
		}
		p.onNoMorePads()
		return gst.PadProbeRemove
	})
}

// maybeOpenGate opens the gate once the renditions are built and the audio
// is known: encoding (its first frame came out), given up, or absent because
// every stream has been seen. Waiting for an encoded frame rather than a
// built branch keeps an audio track that does not decode out of Tracks.
func (p *Pipeline) maybeOpenGate() {
	p.mu.Lock()
	open := p.rungsBuilt && (p.audioFlowing || p.audioGone || (p.noMorePads && !p.audioBuilt && !p.audioPending))
	p.mu.Unlock()
	if open {
		p.openGate()
	}
}

// onNoMorePads runs once every stream of the source is known: it opens the
// gate or fails a source without usable video.
func (p *Pipeline) onNoMorePads() {
	p.mu.Lock()
	if p.noMorePads {
		p.mu.Unlock()
		return
	}
	p.noMorePads = true
	video, unsupported := p.videoBuilt, p.unsupported
	p.mu.Unlock()
	switch {
	case video:
		p.maybeOpenGate()
	case unsupported != "":
		p.fail(fmt.Errorf("%w %s (H.264 and H.265 are supported)", ErrUnsupportedCodec, unsupported))
	case p.audioErr.Load() != nil:
		// The audio failed before any video was seen: that is the news, not
		// the missing video.
		p.fail(fmt.Errorf("%w: audio: %s", ErrBadStream, *p.audioErr.Load()))
	default:
		p.fail(ErrNoVideo)
	}
}

// dropLocked links pad to a fakesink: parsebin's streams must all be linked.
func (p *Pipeline) dropLocked(pad *gst.Pad) {
	if p.closed || p.pipe == nil {
		return
	}
	fs, err := p.make("fakesink", "", prop{"sync", "false"}, prop{"async", "false"}, prop{"enable-last-sample", "false"})
	if err != nil {
		p.log.Warn("dropping stream", "err", err)
		return
	}
	fs.SyncStateWithParent()
	if r := pad.Link(fs.GetStaticPad("sink")); r != gst.PadLinkOK {
		p.log.Warn("linking a dropped stream to fakesink", "result", r.String())
	}
}

// openGate calls sink.Tracks once video (and audio, when there is some) are
// known; appsink callbacks wait for it before their first frame.
func (p *Pipeline) openGate() {
	p.readyOnce.Do(func() {
		p.mu.Lock()
		p.gateOpen = true
		video := slices.Clone(p.videoTracks)
		if p.audioGone {
			p.audioTrack = nil
		}
		audio := p.audioTrack
		sink := p.sink
		p.mu.Unlock()
		if err := sink.Tracks(video, audio); err != nil {
			p.fail(fmt.Errorf("%w: tracks: %w", ErrSink, err))
			return
		}
		close(p.ready)
	})
}

// waitReady blocks a streaming thread until Tracks was called; false means
// the run is over.
func (p *Pipeline) waitReady() bool {
	select {
	case <-p.ready:
		return true
	case <-p.failed:
		return false
	case <-p.stopping:
		return false
	}
}

func (p *Pipeline) videoDecoder(codec string) string {
	b := p.cfg.Backend
	if codec == "video/x-h265" {
		if b.GPU() && b.Decoder == hwprobe.ElemNVH264Dec && gst.Find("nvh265dec") != nil {
			return "nvh265dec"
		}
		return "avdec_h265"
	}
	return b.Decoder
}

// buildVideoLocked decodes the source's video into a tee. The renditions
// hang off the tee once the decoded caps (size, frame rate) are known.
func (p *Pipeline) buildVideoLocked(pad *gst.Pad, codec string) error {
	parser := "h264parse"
	if codec == "video/x-h265" {
		parser = "h265parse"
	}
	head, err := p.chain([]elemSpec{
		{factory: "queue", name: "vqueue"},
		spec(parser),
		{factory: p.videoDecoder(codec), name: "vdec"},
		{factory: "tee", name: "vtee"},
	})
	if err != nil {
		return err
	}
	p.tee = head[3]
	// The caps event reaches the decoder's src pad before the tee: build the
	// renditions there, so the tee forwards it to all of them.
	head[2].GetStaticPad("src").AddProbe(gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		ev := info.GetEvent()
		if ev == nil || ev.Type() != gst.EventTypeCaps {
			return gst.PadProbeOK
		}
		caps := ev.ParseCaps()
		if caps == nil {
			return gst.PadProbeOK
		}
		capsStr := caps.String()
		src := sourceVideo{Codec: codec, Width: capsInt(reWidth, capsStr), Height: capsInt(reHeight, capsStr)}
		if m := reFramerate.FindStringSubmatch(capsStr); m != nil {
			src.FPSNum, _ = strconv.Atoi(m[1])
			src.FPSDen, _ = strconv.Atoi(m[2])
		}
		p.mu.Lock()
		err := p.buildRungsLocked(src)
		p.mu.Unlock()
		if err != nil {
			p.fail(err)
			return gst.PadProbeDrop
		}
		p.maybeOpenGate()
		return gst.PadProbeRemove
	})
	syncStates(head)
	if res := pad.Link(head[0].GetStaticPad("sink")); res != gst.PadLinkOK {
		return fmt.Errorf("linking source video: %s", res.String())
	}
	return nil
}

func (p *Pipeline) buildRungsLocked(src sourceVideo) error {
	if p.closed || p.rungsBuilt {
		return nil
	}
	if src.Width <= 0 || src.Height <= 0 {
		return fmt.Errorf("%w: decoded video without a size", ErrBadStream)
	}
	rungs, notes := plan(p.cfg.Ladder, src)
	for _, n := range notes {
		p.log.Info("ladder adjusted to the source", "note", n)
		if strings.Contains(n, "skipped") {
			p.skipped = append(p.skipped, n)
		}
	}
	p.log.Info("source video", "codec", src.Codec, "width", src.Width, "height", src.Height,
		"fps", fmt.Sprintf("%d/%d", src.FPSNum, src.FPSDen), "renditions", len(rungs))
	threads := p.cfg.EncoderThreads
	if threads <= 0 {
		threads = encoderThreads(runtime.NumCPU(), len(rungs))
	}
	var all []*gst.Element
	for i, r := range rungs {
		elems, rr, err := p.buildRungLocked(i, r, threads)
		if err != nil {
			return fmt.Errorf("building rendition %s: %w", r.Name, err)
		}
		if err := p.tee.Link(elems[0]); err != nil {
			return fmt.Errorf("linking tee to rendition %s: %w", r.Name, err)
		}
		all = append(all, elems...)
		p.rungs = append(p.rungs, rr)
		p.videoTracks = append(p.videoTracks, media.VideoTrack{
			Name: r.Name, Width: r.Width, Height: r.Height, FrameRateNum: r.FPSNum, FrameRateDen: r.FPSDen,
			BitrateBps: r.VideoBitrateKbps * 1000, MaxBitrateBps: r.MaxBitrateKbps * 1000,
		})
	}
	syncStates(all)
	p.rungsBuilt, p.rungsAt = true, time.Now()
	return nil
}

// rungSpecs lists the elements of one rendition branch, from its queue to
// its appsink, and the index of the encoder. Element 1 is the videorate.
func rungSpecs(b hwprobe.Backend, r rung, threads int) (specs []elemSpec, encIdx int) {
	fr := fmt.Sprintf("framerate=%d/%d", r.FPSNum, r.FPSDen)
	specs = []elemSpec{
		// A short queue: enough to let the renditions encode in parallel,
		// small enough that EOS drains quickly on stop.
		spec("queue", prop{"max-size-time", strconv.Itoa(int(500 * time.Millisecond))}, prop{"max-size-bytes", "0"}, prop{"max-size-buffers", "0"}),
		spec("videorate"),
	}
	size := fmt.Sprintf("width=%d,height=%d,pixel-aspect-ratio=1/1", r.Width, r.Height)
	// Every rung keeps BT.709: left free, videoconvertscale converts SD rungs
	// to BT.601, a conversion that costs CPU and quality (measured by just
	// bench: 480p 38.9 -> 42.6 dB, 360p 37.2 -> 39.5 dB PSNR with BT.709
	// kept; a 4-tap scaler was tried and lost 2 dB on 720p).
	const colorimetry = ",colorimetry=bt709"
	switch {
	case b.Upload != "":
		// Frames may already be in CUDA memory (nvh264dec) or not (CPU decode).
		specs = append(specs,
			capsSpec("video/x-raw(memory:CUDAMemory),"+fr+"; video/x-raw,"+fr),
			spec(b.Upload), spec(b.Scaler),
			capsSpec("video/x-raw(memory:CUDAMemory),"+size))
		if b.Convert != "" {
			specs = append(specs, spec(b.Convert))
		}
		specs = append(specs, capsSpec("video/x-raw(memory:CUDAMemory),format=NV12"))
	case b.GPU():
		specs = append(specs, capsSpec("video/x-raw,"+fr), spec(b.Scaler), capsSpec("video/x-raw,format=NV12,"+size+colorimetry))
	default:
		// x264enc needs I420 in front of it, or it negotiates High 4:4:4.
		specs = append(specs, capsSpec("video/x-raw,"+fr), spec(b.Scaler),
			capsSpec("video/x-raw,format=I420,"+size+colorimetry))
	}
	encIdx = len(specs)
	specs = append(specs,
		elemSpec{factory: b.Encoder, name: "enc_" + r.Name, props: encoderProps(b, r, threads)},
		capsSpec("video/x-h264,profile=high,stream-format=byte-stream,alignment=au"),
		spec("h264parse", prop{"config-interval", "-1"}),
		spec("appsink", prop{"caps", "video/x-h264,stream-format=byte-stream,alignment=au"},
			prop{"sync", "false"}, prop{"async", "false"}, prop{"enable-last-sample", "false"},
			prop{"emit-signals", "false"}, prop{"max-buffers", "0"}),
	)
	return specs, encIdx
}

func (p *Pipeline) buildRungLocked(index int, r rung, threads int) ([]*gst.Element, *rungRun, error) {
	specs, encIdx := rungSpecs(p.cfg.Backend, r, threads)
	elems, err := p.chain(specs)
	if err != nil {
		return nil, nil, err
	}
	rr := &rungRun{rung: r, index: index, rate: elems[1]}
	encSink := elems[encIdx].GetStaticPad("sink")
	encSink.AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		buf := info.GetBuffer()
		if buf == nil {
			return gst.PadProbeOK
		}
		if pts := buf.PresentationTimestamp(); pts != gst.ClockTimeNone && p.keyframeDue(rr, time.Duration(pts)) {
			pad.SendEvent(forceKeyUnitEvent())
		}
		return gst.PadProbeOK
	})
	appsink := app.SinkFromElement(elems[len(elems)-1])
	appsink.SetCallbacks(&app.SinkCallbacks{
		NewSampleFunc: func(s *app.Sink) gst.FlowReturn { return p.onVideoSample(rr, s) },
	})
	return elems, rr, nil
}

// forceKeyUnitEvent is GStreamer's downstream force-key-unit event
// (gst_video_event_new_downstream_force_key_unit without timestamps: the next
// frame becomes an IDR, with SPS/PPS).
func forceKeyUnitEvent() *gst.Event {
	s := gst.NewStructure("GstForceKeyUnit")
	_ = s.SetValue("all-headers", true)
	return gst.NewCustomEvent(gst.EventTypeCustomDownstream, s)
}

// keyframeDue reports whether the frame at pts is the first one at or past a
// keyframe boundary: a multiple of the rung's keyframe interval or of the
// segment duration, counted from the first frame any rendition encoded.
// Every rendition sees the same decoded timestamps, so their IDR frames fall
// on the same instants whatever their frame rates.
func (p *Pipeline) keyframeDue(r *rungRun, pts time.Duration) bool {
	if p.origin.Load() == 0 {
		p.origin.CompareAndSwap(0, int64(pts)+1)
	}
	rel := pts - time.Duration(p.origin.Load()-1)
	if !r.havePrev {
		r.havePrev, r.prevRel = true, rel
		return false // the first frame is an IDR anyway
	}
	prev := r.prevRel
	r.prevRel = rel
	kfi := time.Duration(r.KeyframeInterval * float64(time.Second))
	return crosses(prev, rel, kfi) || crosses(prev, rel, p.cfg.SegmentDuration)
}

// crosses reports whether a multiple of period lies in (prev, cur], with a
// millisecond of tolerance for rounded frame timestamps.
func crosses(prev, cur, period time.Duration) bool {
	if period <= 0 || cur <= prev {
		return false
	}
	const tol = time.Millisecond
	a := math.Floor(float64(prev+tol) / float64(period))
	b := math.Floor(float64(cur+tol) / float64(period))
	return b > a
}

func (p *Pipeline) audioDecoder(name, caps string) (string, error) {
	switch name {
	case "audio/mpeg":
		if capsInt(reMPEGVer, caps) == 1 {
			for _, d := range []string{"mpg123audiodec", "avdec_mp3"} {
				if gst.Find(d) != nil {
					return d, nil
				}
			}
			break
		}
		return "avdec_aac", nil
	case "audio/x-opus":
		return "opusdec", nil
	case "audio/x-ac3", "audio/ac3":
		return "avdec_ac3", nil
	case "audio/x-eac3":
		return "avdec_eac3", nil
	case "audio/x-raw":
		return "identity", nil
	}
	return "", fmt.Errorf("unsupported audio codec %s", name)
}

// buildAudioLocked decodes the source's audio from pad and encodes it to
// the ladder's AAC. fix, when set, repairs the stream's AAC signalling.
func (p *Pipeline) buildAudioLocked(pad *gst.Pad, name, caps string, fix aacFixup) error {
	dec, err := p.audioDecoder(name, caps)
	if err != nil {
		return err
	}
	a := p.cfg.Ladder.Audio
	enc := elemSpec{factory: "avenc_aac", name: "audio_enc", props: []prop{{"bitrate", strconv.Itoa(a.BitrateKbps * 1000)}}}
	if gst.Find("avenc_aac") == nil {
		enc = elemSpec{factory: "voaacenc", name: "audio_enc", props: []prop{{"bitrate", strconv.Itoa(a.BitrateKbps * 1000)}}}
	}
	// The audio appsink waits for the tracks to be announced, which needs a
	// decoded video frame: joining a live stream a long GOP before its next
	// keyframe, a blocking queue would fill and stall the demuxer, which
	// feeds the video too. The queue drops its oldest audio instead.
	specs := []elemSpec{{factory: "queue", name: "audio_queue", props: []prop{{"max-size-time", strconv.Itoa(int(2 * time.Second))},
		{"max-size-bytes", "0"}, {"max-size-buffers", "0"}, {"leaky", "downstream"}}}}
	if fix.caps != "" {
		specs = append(specs, elemSpec{factory: "capssetter", name: "audio_fix",
			props: []prop{{"join", "true"}, {"replace", "false"}, {"caps", fix.caps}}})
	}
	switch dec {
	case "avdec_aac":
		if !fix.noParser {
			specs = append(specs, spec("aacparse"))
		}
	case "mpg123audiodec", "avdec_mp3":
		specs = append(specs, spec("mpegaudioparse"))
	}
	decIdx, posIdx := len(specs), len(specs)+3
	specs = append(specs,
		elemSpec{factory: dec, name: "audio_dec"},
		// Interleave first, so capssetter below never sees audio meta.
		spec("audioconvert"),
		capsSpec("audio/x-raw,layout=interleaved"),
		spec("capssetter", prop{"join", "true"}, prop{"replace", "false"}, prop{"caps", "audio/x-raw"}),
		spec("audioconvert"),
		spec("audioresample"),
		capsSpec(fmt.Sprintf("audio/x-raw,channels=%d,rate=%d", a.Channels, a.SampleRate)),
		enc,
		spec("appsink", prop{"caps", "audio/mpeg,mpegversion=4,stream-format=raw"},
			prop{"sync", "false"}, prop{"async", "false"}, prop{"enable-last-sample", "false"},
			prop{"emit-signals", "false"}, prop{"max-buffers", "0"}),
	)
	for i := range specs {
		if specs[i].name == "" {
			specs[i].name = fmt.Sprintf("audio_%s%d", specs[i].factory, i)
		}
	}
	elems, err := p.chain(specs)
	if err != nil {
		return err
	}
	setter := elems[posIdx]
	elems[decIdx].GetStaticPad("src").AddProbe(gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		ev := info.GetEvent()
		if ev == nil || ev.Type() != gst.EventTypeCaps {
			return gst.PadProbeOK
		}
		if caps := ev.ParseCaps(); caps != nil {
			if mask, ok := unpositionedMask(caps.String()); ok {
				p.log.Info("decoded audio has no channel positions: assuming the default layout", "channel_mask", fmt.Sprintf("0x%x", mask))
				setter.SetArg("caps", fmt.Sprintf("audio/x-raw,channel-mask=(bitmask)0x%x", mask))
			}
		}
		return gst.PadProbeOK
	})
	appsink := app.SinkFromElement(elems[len(elems)-1])
	appsink.SetCallbacks(&app.SinkCallbacks{
		NewSampleFunc: func(s *app.Sink) gst.FlowReturn { return p.onAudioSample(s) },
	})
	syncStates(elems)
	p.addAudioFirewall(pad)
	if res := pad.Link(elems[0].GetStaticPad("sink")); res != gst.PadLinkOK {
		return fmt.Errorf("linking source audio: %s", res.String())
	}
	p.audioSink = elems[len(elems)-1]
	p.audioTrack = &media.AudioTrack{
		SampleRate: a.SampleRate, Channels: a.Channels, BitrateBps: a.BitrateKbps * 1000,
		Config: AudioSpecificConfig(a.SampleRate, a.Channels),
	}
	return nil
}

var (
	reChannels = regexp.MustCompile(`channels=\(int\)(\d+)`)
	reMask     = regexp.MustCompile(`channel-mask=\(bitmask\)0x([0-9a-fA-F]+)`)
)

// defaultMasks are the channel layouts FFmpeg assumes for a channel count
// when the stream does not say (e.g. AAC 5.1 signalled by a program config
// element, which avdec_aac decodes as 6 unpositioned channels): 3.0, 4.0,
// 5.0, 5.1, 6.1 and 7.1. Their FFmpeg channel order is GStreamer's order for
// the same positions.
var defaultMasks = map[int]uint64{3: 0x7, 4: 0x107, 5: 0x37, 6: 0x3f, 7: 0xd0f, 8: 0xc3f}

// unpositionedMask returns the channel mask to assume for decoded caps with
// more than two channels and no (or a zero) channel mask. audioconvert cannot
// downmix unpositioned channels.
func unpositionedMask(caps string) (uint64, bool) {
	n := capsInt(reChannels, caps)
	if n <= 2 {
		return 0, false
	}
	if m := reMask.FindStringSubmatch(caps); m != nil {
		if v, err := strconv.ParseUint(m[1], 16, 64); err == nil && v != 0 {
			return 0, false
		}
	}
	mask, ok := defaultMasks[n]
	return mask, ok
}

// AudioSpecificConfig is the MPEG-4 AudioSpecificConfig of AAC-LC at rate Hz
// with channels channels (1–7), as both AAC encoders emit it.
func AudioSpecificConfig(rate, channels int) []byte {
	rates := []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	idx := slices.Index(rates, rate)
	if idx < 0 {
		idx = 3
	}
	const aacLC = 2
	v := uint16(aacLC)<<11 | uint16(idx)<<7 | uint16(channels&0xf)<<3
	return []byte{byte(v >> 8), byte(v)}
}

// runningTime converts a buffer timestamp to running time, the clock all
// tracks share. Timestamps before the segment start come out negative.
func runningTime(seg *gst.Segment, t gst.ClockTime) time.Duration {
	if t == gst.ClockTimeNone {
		return 0
	}
	if seg == nil {
		return time.Duration(t)
	}
	return time.Duration(seg.ToRunningTimeFull(gst.FormatTime, uint64(t)))
}

// pull takes the next sample and its buffer's contents, releasing both
// GStreamer references at once instead of waiting for the Go GC.
func pull(s *app.Sink) (pts, dts, dur time.Duration, key bool, data []byte, ok bool) {
	sample := s.PullSample()
	if sample == nil {
		return 0, 0, 0, false, nil, false
	}
	defer func() {
		runtime.SetFinalizer(sample, nil)
		sample.Unref()
	}()
	buf := sample.GetBuffer()
	if buf == nil {
		return 0, 0, 0, false, nil, false
	}
	defer func() {
		runtime.SetFinalizer(buf, nil)
		buf.Unref()
	}()
	seg := sample.GetSegment()
	pts = runningTime(seg, buf.PresentationTimestamp())
	dts = pts
	if d := buf.DecodingTimestamp(); d != gst.ClockTimeNone {
		dts = runningTime(seg, d)
	}
	if d := buf.Duration(); d != gst.ClockTimeNone {
		dur = time.Duration(d)
	}
	return pts, dts, dur, !buf.HasFlags(gst.BufferFlagDeltaUnit), buf.Bytes(), true
}

func (p *Pipeline) onVideoSample(r *rungRun, s *app.Sink) gst.FlowReturn {
	pts, dts, dur, key, data, ok := pull(s)
	if !ok {
		return gst.FlowEOS
	}
	if !p.waitReady() {
		return gst.FlowFlushing
	}
	now := time.Now()
	r.out.Add(1)
	r.meter.add(now, pts, dur)
	p.lastOut.Store(now.UnixNano())
	if err := p.sink.WriteVideo(r.index, media.VideoAU{PTS: pts, DTS: dts, Duration: dur, Keyframe: key, Data: data}); err != nil {
		p.fail(fmt.Errorf("%w: writing %s: %w", ErrSink, r.Name, err))
		return gst.FlowError
	}
	return gst.FlowOK
}

func (p *Pipeline) onAudioSample(s *app.Sink) gst.FlowReturn {
	pts, _, dur, _, data, ok := pull(s)
	if !ok {
		return gst.FlowEOS
	}
	p.mu.Lock()
	first := !p.audioFlowing
	p.audioFlowing = true
	p.mu.Unlock()
	if first {
		p.maybeOpenGate()
	}
	if !p.waitReady() {
		return gst.FlowFlushing
	}
	p.mu.Lock()
	announced := p.audioTrack != nil
	p.mu.Unlock()
	if !announced { // given up before Tracks
		return gst.FlowOK
	}
	p.audioOut.Add(1)
	if err := p.sink.WriteAudio(media.AudioFrame{PTS: pts, Duration: dur, Data: data}); err != nil {
		p.fail(fmt.Errorf("%w: writing audio: %w", ErrSink, err))
		return gst.FlowError
	}
	return gst.FlowOK
}

// busError turns a GStreamer error message into a classified error.
func (p *Pipeline) busError(msg *gst.Message) error {
	gerr := msg.ParseError()
	src := msg.Source()
	text := p.redact(gerr.Error())
	p.log.Debug("pipeline error", "element", src, "error", text, "debug", p.redact(gerr.DebugString()))
	switch {
	case isAudioElement(src):
		return fmt.Errorf("%w: audio: %s: %s", ErrBadStream, src, text)
	case p.audioErr.Load() != nil && strings.Contains(gerr.DebugString(), "not-negotiated"):
		// The audio's failure reached the demuxer before it was cut off.
		return fmt.Errorf("%w: audio: %s", ErrBadStream, *p.audioErr.Load())
	case src == "source":
		return fmt.Errorf("%w: %s", ErrSourceUnreachable, text)
	case src == "typefind" || strings.Contains(text, "determine type of stream"):
		return fmt.Errorf("%w: %s", ErrBadStream, text)
	case src == "vdec" || strings.Contains(src, "demux") || strings.Contains(src, "parse"):
		return fmt.Errorf("%w: %s: %s", ErrBadStream, src, text)
	default:
		return fmt.Errorf("pipeline error in %s: %s", src, text)
	}
}

// redact removes the authenticated URL and the credential from s.
func (p *Pipeline) redact(s string) string {
	s = strings.ReplaceAll(s, p.url, p.cfg.Source.String())
	if raw := p.cfg.Source.URL; raw != "" {
		s = strings.ReplaceAll(s, raw, p.cfg.Source.String())
	}
	if pw := p.cfg.Source.Password; pw != "" {
		s = strings.ReplaceAll(s, pw, "<redacted>")
	}
	return s
}

// Stats returns a snapshot of the pipeline's counters. After Run returned it
// returns the final values.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.final != nil {
		return *p.final
	}
	now := time.Now()
	st := Stats{StreamID: p.cfg.StreamID, AudioFramesOut: p.audioOut.Load(), Skipped: slices.Clone(p.skipped)}
	for _, r := range p.rungs {
		rs := RenditionStats{Name: r.Name, FramesOut: r.out.Load()}
		rs.EncodeFPS, rs.RealtimeFactor = r.meter.snapshot(now)
		if r.rate != nil {
			rs.FramesIn = propUint(r.rate, "in")
			rs.Dropped = propUint(r.rate, "drop")
			rs.Duplicated = propUint(r.rate, "duplicate")
		}
		st.Renditions = append(st.Renditions, rs)
	}
	return st
}

func propUint(e *gst.Element, name string) uint64 {
	v, err := e.GetProperty(name)
	if err != nil {
		return 0
	}
	switch n := v.(type) {
	case uint64:
		return n
	case int64:
		return uint64(max(n, 0))
	case uint:
		return uint64(n)
	case int:
		return uint64(max(n, 0))
	}
	return 0
}
