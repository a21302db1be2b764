package pipeline

import (
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/workers/internal/hwprobe"
	"github.com/dionysia/dionysia/workers/internal/media"
)

// renditionSet is the ladder of one run: it plans the renditions against
// the decoded source, builds one renditionBranch per rung off the decoded
// video's tee, and knows the video tracks they announce.
type renditionSet struct {
	log       *slog.Logger
	graph     *graph
	ladder    ladder.Ladder
	backend   hwprobe.Backend
	threads   int // x264 threads per rendition, 0: from the cores
	keyframes *keyframePolicy
	gate      *trackGate
	failure   *failure
	stats     *runStats
	health    *healthMeter
	legs      []branch // pointEncoded; set before the run starts

	mu      sync.Mutex
	built   bool
	builtAt time.Time
	list    []*renditionBranch
	tracks  []media.VideoTrack
	skipped []string
}

// build plans the ladder against src and hangs its renditions off tee.
func (s *renditionSet) build(tee *gst.Element, src sourceVideo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built || s.graph.isClosed() {
		return nil
	}
	if src.Width <= 0 || src.Height <= 0 {
		return fmt.Errorf("%w: decoded video without a size", ErrBadStream)
	}
	rungs, notes := plan(s.ladder, src)
	for _, n := range notes {
		s.log.Info("ladder adjusted to the source", "note", n)
		if strings.Contains(n, "skipped") {
			s.skipped = append(s.skipped, n)
		}
	}
	s.log.Info("source video", "codec", src.Codec, "width", src.Width, "height", src.Height,
		"fps", fmt.Sprintf("%d/%d", src.FPSNum, src.FPSDen), "renditions", len(rungs))
	threads := s.threads
	if threads <= 0 {
		threads = encoderThreads(runtime.NumCPU(), len(rungs))
	}
	var all []*gst.Element
	for i, r := range rungs {
		elems, rb, err := s.buildBranch(i, r, threads, src)
		if err != nil {
			return fmt.Errorf("building rendition %s: %w", r.Name, err)
		}
		if err := tee.Link(elems[0]); err != nil {
			return fmt.Errorf("linking tee to rendition %s: %w", r.Name, err)
		}
		all = append(all, elems...)
		s.list = append(s.list, rb)
		s.tracks = append(s.tracks, media.VideoTrack{
			Name: r.Name, Width: r.Width, Height: r.Height, FrameRateNum: r.FPSNum, FrameRateDen: r.FPSDen,
			BitrateBps: r.VideoBitrateKbps * 1000, MaxBitrateBps: r.MaxBitrateKbps * 1000,
		})
	}
	syncStates(all)
	s.built, s.builtAt = true, time.Now()
	return nil
}

// buildBranch builds rendition index and, when branches join after its
// encoder, the tee in front of its appsink and their legs.
func (s *renditionSet) buildBranch(index int, r rung, threads int, src sourceVideo) ([]*gst.Element, *renditionBranch, error) {
	specs, encIdx := rungSpecs(s.backend, r, threads)
	if len(s.legs) > 0 {
		specs = slices.Insert(specs, len(specs)-1, elemSpec{factory: "tee", name: "etee_" + r.Name})
	}
	elems, err := s.graph.chain(specs)
	if err != nil {
		return nil, nil, err
	}
	rb := &renditionBranch{rung: r, index: index, rate: elems[1], gate: s.gate, failure: s.failure, stats: s.stats,
		keepsRate: r.FPSNum*src.FPSDen == src.FPSNum*r.FPSDen, health: s.health,
		clock: keyframeClock{interval: time.Duration(r.KeyframeInterval * float64(time.Second))}}
	s.keyframes.attach(elems[encIdx].GetStaticPad("sink"), &rb.clock)
	app.SinkFromElement(elems[len(elems)-1]).SetCallbacks(&app.SinkCallbacks{
		NewSampleFunc: rb.onSample,
	})
	if len(s.legs) > 0 {
		tee := elems[len(elems)-2]
		for _, l := range s.legs {
			if err := attachLeg(s.graph, tee, l, attachment{point: pointEncoded, codec: src.Codec, video: src, rendition: &rb.rung}); err != nil {
				return nil, nil, err
			}
		}
	}
	return elems, rb, nil
}

// isBuilt reports whether the renditions exist, and since when.
func (s *renditionSet) isBuilt() (bool, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.built, s.builtAt
}

// videoTracks returns the tracks the renditions announce.
func (s *renditionSet) videoTracks() []media.VideoTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tracks)
}

// snapshot returns each rendition's counters and the skipped rungs.
func (s *renditionSet) snapshot(now time.Time) ([]RenditionStats, []string) {
	s.mu.Lock()
	list, skipped := slices.Clone(s.list), slices.Clone(s.skipped)
	s.mu.Unlock()
	var out []RenditionStats
	for _, r := range list {
		out = append(out, r.snapshot(now))
	}
	return out, skipped
}

// droppedExcess sums the frames videorate dropped in the renditions that
// keep the source's frame rate: surplus frames, not a planned reduction.
func (s *renditionSet) droppedExcess() uint64 {
	s.mu.Lock()
	list := slices.Clone(s.list)
	s.mu.Unlock()
	var n uint64
	for _, r := range list {
		if !r.keepsRate {
			continue
		}
		r.mu.Lock()
		if r.rate != nil {
			n += propUint(r.rate, "drop")
		}
		r.mu.Unlock()
	}
	return n
}

// release drops the references to GStreamer elements.
func (s *renditionSet) release() {
	s.mu.Lock()
	list := slices.Clone(s.list)
	s.mu.Unlock()
	for _, r := range list {
		r.release()
	}
}

// renditionBranch is one rendition: frame-rate conversion, scaling,
// encoding and the appsink that hands its access units to the sink.
//
//	queue ! videorate ! caps ! scaler ! caps ! encoder ! caps ! h264parse [! tee] ! appsink
type renditionBranch struct {
	rung
	index   int
	clock   keyframeClock // the encoder's streaming thread only
	gate    *trackGate
	failure *failure
	stats   *runStats
	// keepsRate: the rung has the source's frame rate, so what its
	// videorate drops is surplus, not a planned reduction.
	keepsRate bool
	health    *healthMeter // fed by the first rendition only
	out       atomic.Uint64
	meter     rate

	mu   sync.Mutex
	rate *gst.Element // videorate, read for stats; nil after teardown
}

func (r *renditionBranch) onSample(s *app.Sink) gst.FlowReturn {
	pts, dts, dur, key, data, ok := pull(s)
	if !ok {
		return gst.FlowEOS
	}
	if !r.gate.wait() {
		return gst.FlowFlushing
	}
	now := time.Now()
	r.out.Add(1)
	r.meter.add(now, pts, dur)
	r.stats.videoOut(now)
	if r.index == 0 {
		r.health.output(now, pts, dur, key)
	}
	if err := r.gate.sink.WriteVideo(r.index, media.VideoAU{PTS: pts, DTS: dts, Duration: dur, Keyframe: key, Data: data}); err != nil {
		r.failure.fail(fmt.Errorf("%w: writing %s: %w", ErrSink, r.Name, err))
		return gst.FlowError
	}
	return gst.FlowOK
}

func (r *renditionBranch) snapshot(now time.Time) RenditionStats {
	rs := RenditionStats{Name: r.Name, FramesOut: r.out.Load()}
	rs.EncodeFPS, rs.RealtimeFactor = r.meter.snapshot(now)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rate != nil {
		rs.FramesIn = propUint(r.rate, "in")
		rs.Dropped = propUint(r.rate, "drop")
		rs.Duplicated = propUint(r.rate, "duplicate")
	}
	return rs
}

func (r *renditionBranch) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rate = nil
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
		appsinkSpec("", "video/x-h264,stream-format=byte-stream,alignment=au"),
	)
	return specs, encIdx
}
