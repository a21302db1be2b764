package pipeline

import (
	"errors"
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
	"github.com/dionysia/dionysia/workers/internal/media"
)

// audioBranch decodes the source's first audio stream and encodes it to the
// ladder's AAC:
//
//	queue(leaky) [! capssetter] [! parser] ! decoder ! audioconvert ! ... ! avenc_aac [! tee] ! appsink
//
// AAC that reaches the worker without its channel layout is held back until
// its first buffer shows how to decode it (aacsignal.go, aacfix.go). Audio
// that cannot be decoded is given up, and a failure of the branch never
// stops the video: the run goes on without audio.
type audioBranch struct {
	log     *slog.Logger
	graph   *graph
	cfg     ladder.Audio
	red     redactor
	gate    *trackGate
	failure *failure
	legs    []branch // pointAudio; set before the run starts
	// beforeVideo reports whether a live source's video has not appeared
	// yet (set before the run starts). Audio encoded meanwhile is dropped
	// rather than held: holding it would block the demuxer, which reads
	// every stream from one thread, before the video's first keyframe.
	beforeVideo func() bool

	mu sync.Mutex
	// pending: the audio pad waits for its first buffer, which tells how to
	// decode it.
	pending bool
	built   bool
	// gone: the audio was given up (undecodable, or its branch failed): the
	// run goes on without it.
	gone    bool
	failed  bool // an audio element posted an error
	flowing bool // the first encoded audio frame came out
	// sealed: the tracks were announced (or are being): audio that appears
	// or becomes decodable later is dropped.
	sealed bool
	// end is where the encoded audio ends: the appsink, or the tee in
	// front of it and of the legs. A failed branch is ended there.
	end   *gst.Element
	track *media.AudioTrack

	// cut is set when the branch failed (see addFirewall): the demuxer's
	// audio buffers are dropped from then on.
	cut     atomic.Bool
	errText atomic.Pointer[string] // that error, for the log and for ErrNoVideo
	out     atomic.Uint64
}

// attach routes an audio pad of the demuxer: the first stream is decoded
// (or held back, or given up), the others are dropped.
func (a *audioBranch) attach(pad *gst.Pad, name, caps string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.sealed && !a.built:
		a.log.Warn("audio appeared after the tracks were announced without it: dropping it", "caps", name)
		a.graph.drop(pad)
		return
	case a.built || a.pending || a.gone:
		a.log.Info("ignoring an extra audio stream", "caps", name)
		a.graph.drop(pad)
		return
	}
	check, asc, err := aacCheck(name, caps)
	switch {
	case err != nil:
		a.giveUpLocked(pad, name, err)
	case check != aacOK:
		// Decide on the first buffer, which holds the channel elements.
		a.pending = true
		a.addAACProbe(pad, name, caps, check, asc)
	default:
		if err := a.buildLocked(pad, name, caps, aacFixup{}); err != nil {
			a.giveUpLocked(pad, name, err)
			return
		}
		a.built = true
	}
}

// settled reports whether the tracks may be announced as far as the audio
// is concerned: it is encoding, was given up, or is absent although every
// stream of the source has been seen. Waiting for an encoded frame rather
// than a built branch keeps an audio track that does not decode out of
// Tracks.
func (a *audioBranch) settled(allSeen bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flowing || a.gone || (allSeen && !a.built && !a.pending)
}

// giveUpWaiting gives the audio up when it has produced nothing although
// the video is ready (a demuxer may announce audio and never deliver it, or
// it may not decode). gaveUp is false when the audio flows, was given up
// already or the tracks were announced.
func (a *audioBranch) giveUpWaiting() (built, gaveUp bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sealed || a.flowing || a.gone {
		return a.built, false
	}
	a.gone = true
	if a.built {
		a.cut.Store(true)
	}
	return a.built, true
}

// seal is called when the tracks are announced: it returns the audio
// track, nil without audio.
func (a *audioBranch) seal() *media.AudioTrack {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sealed = true
	if a.gone {
		a.track = nil
	}
	return a.track
}

// recordError notes an audio element's error (from the thread that posts
// it) and cuts the branch off.
func (a *audioBranch) recordError(text string) {
	a.cut.Store(true)
	a.errText.CompareAndSwap(nil, &text)
}

// err returns the first audio error ("" for none).
func (a *audioBranch) err() string {
	if t := a.errText.Load(); t != nil {
		return *t
	}
	return ""
}

func (a *audioBranch) framesOut() uint64 { return a.out.Load() }

func (a *audioBranch) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.end = nil
}

func audioDecoder(name, caps string) (string, error) {
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

// buildLocked decodes the source's audio from pad and encodes it to the
// ladder's AAC. fix, when set, repairs the stream's AAC signalling.
func (a *audioBranch) buildLocked(pad *gst.Pad, name, caps string, fix aacFixup) error {
	dec, err := audioDecoder(name, caps)
	if err != nil {
		return err
	}
	c := a.cfg
	enc := elemSpec{factory: "avenc_aac", name: "audio_enc", props: []prop{{"bitrate", strconv.Itoa(c.BitrateKbps * 1000)}}}
	if gst.Find("avenc_aac") == nil {
		enc = elemSpec{factory: "voaacenc", name: "audio_enc", props: []prop{{"bitrate", strconv.Itoa(c.BitrateKbps * 1000)}}}
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
		capsSpec(fmt.Sprintf("audio/x-raw,channels=%d,rate=%d", c.Channels, c.SampleRate)),
		enc,
		appsinkSpec("", "audio/mpeg,mpegversion=4,stream-format=raw"),
	)
	if len(a.legs) > 0 {
		specs = slices.Insert(specs, len(specs)-1, elemSpec{factory: "tee", name: "audio_tee"})
	}
	for i := range specs {
		if specs[i].name == "" {
			specs[i].name = fmt.Sprintf("audio_%s%d", specs[i].factory, i)
		}
	}
	elems, err := a.graph.chain(specs)
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
				a.log.Info("decoded audio has no channel positions: assuming the default layout", "channel_mask", fmt.Sprintf("0x%x", mask))
				setter.SetArg("caps", fmt.Sprintf("audio/x-raw,channel-mask=(bitmask)0x%x", mask))
			}
		}
		return gst.PadProbeOK
	})
	app.SinkFromElement(elems[len(elems)-1]).SetCallbacks(&app.SinkCallbacks{NewSampleFunc: a.onSample})
	a.end = elems[len(elems)-1]
	if len(a.legs) > 0 {
		a.end = elems[len(elems)-2]
		for _, l := range a.legs {
			if err := attachLeg(a.graph, a.end, l, attachment{point: pointAudio, codec: name}); err != nil {
				return err
			}
		}
	}
	syncStates(elems)
	a.addFirewall(pad)
	if res := pad.Link(elems[0].GetStaticPad("sink")); res != gst.PadLinkOK {
		return fmt.Errorf("linking source audio: %s", res.String())
	}
	a.track = &media.AudioTrack{
		SampleRate: c.SampleRate, Channels: c.Channels, BitrateBps: c.BitrateKbps * 1000,
		Config: AudioSpecificConfig(c.SampleRate, c.Channels),
	}
	return nil
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

func (a *audioBranch) onSample(s *app.Sink) gst.FlowReturn {
	pts, _, dur, _, data, ok := pull(s)
	if !ok {
		return gst.FlowEOS
	}
	a.mu.Lock()
	first := !a.flowing
	a.flowing = true
	a.mu.Unlock()
	if first {
		a.gate.maybeOpen()
	}
	if !a.gate.isOpen() && a.beforeVideo != nil && a.beforeVideo() {
		return gst.FlowOK
	}
	if !a.gate.wait() {
		return gst.FlowFlushing
	}
	a.mu.Lock()
	announced := a.track != nil
	a.mu.Unlock()
	if !announced { // given up before Tracks
		return gst.FlowOK
	}
	a.out.Add(1)
	if err := a.gate.sink.WriteAudio(media.AudioFrame{PTS: pts, Duration: dur, Data: data}); err != nil {
		a.failure.fail(fmt.Errorf("%w: writing audio: %w", ErrSink, err))
		return gst.FlowError
	}
	return gst.FlowOK
}

// aacProbeBuffers is how many buffers of a held-back AAC stream may fail to
// parse before its audio is given up.
const aacProbeBuffers = 5

// addAACProbe holds pad's audio stream back until its first buffer shows
// how to decode it, then builds the audio branch (or gives the audio up).
// flvdemux and tsdemux push every stream from one thread: the probe drops
// what it does not pass, so the unlinked pad never returns not-linked to
// the demuxer and the video keeps flowing meanwhile.
//
// The branch is linked from within the probe; GStreamer sends the pad's
// sticky events (stream-start, caps through the capssetter, segment) to the
// new peer before the next buffer.
func (a *audioBranch) addAACProbe(pad *gst.Pad, name, caps string, check aacCheckResult, asc ascInfo) {
	var (
		decided bool
		tries   int
		pce     []byte // ADTS: put in front of every raw data block
		warned  bool
	)
	pad.AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		buf := info.GetBuffer()
		if buf == nil {
			return gst.PadProbeOK
		}
		if decided {
			if pce == nil {
				return gst.PadProbeOK
			}
			return a.insertPCE(buf, pce, &warned)
		}
		fix, framePCE, layout, err := analyseAAC(check, asc, buf.Bytes())
		if err != nil && !errors.Is(err, errAACLayout) && tries < aacProbeBuffers-1 {
			tries++
			a.log.Debug("AAC frame not understood: trying the next one", "err", err)
			return gst.PadProbeDrop
		}
		decided = true
		a.mu.Lock()
		a.pending = false
		switch {
		case a.graph.isClosed():
		case a.sealed:
			a.log.Warn("audio decodable only after the tracks were announced without it: dropping it", "caps", name)
			a.gone = true
			a.graph.drop(pad)
		case err != nil:
			a.giveUpLocked(pad, name, err)
		default:
			if berr := a.buildLocked(pad, name, caps, fix); berr != nil {
				a.giveUpLocked(pad, name, berr)
				break
			}
			a.built = true
			pce = framePCE
			if fix.caps != "" {
				a.log.Info("AAC without its channel layout: recovered it from the bitstream",
					"channels", layout.channels(), "elements", layout.String())
			}
		}
		a.mu.Unlock()
		a.gate.maybeOpen()
		// This buffer is dropped: the probes added while it is pushed (the
		// firewall) would see it before the pad's sticky events reach the new
		// branch. One frame of audio is lost.
		if pce == nil {
			removeProbe(pad, info)
		}
		return gst.PadProbeDrop
	})
}

// removeProbe removes the probe that info is for.
func removeProbe(pad *gst.Pad, info *gst.PadProbeInfo) { pad.RemoveProbe(uint64(info.ID())) }

// insertPCE rewrites an ADTS buffer in place so that every raw data block
// starts with pce. A buffer that cannot be rewritten is dropped: the
// decoder could not decode it either.
func (a *audioBranch) insertPCE(buf *gst.Buffer, pce []byte, warned *bool) gst.PadProbeReturn {
	out, changed, err := adtsAddPCE(buf.Bytes(), pce)
	switch {
	case err == nil && !changed:
		return gst.PadProbeOK
	case err == nil && !buf.IsWritable():
		err = errors.New("buffer not writable")
	}
	if err != nil {
		if !*warned {
			*warned = true
			a.log.Warn("dropping AAC frames that cannot be given their channel layout", "err", err)
		}
		return gst.PadProbeDrop
	}
	nb := gst.NewBufferFromBytes(out)
	mem := nb.GetAllMemory()
	buf.ReplaceAllMemory(mem) // takes its own reference
	runtime.SetFinalizer(mem, nil)
	mem.Unref()
	runtime.SetFinalizer(nb, nil)
	nb.Unref()
	return gst.PadProbeOK
}

// giveUpLocked drops the audio stream of pad: the run goes on with video
// only, and the tracks are announced without audio.
func (a *audioBranch) giveUpLocked(pad *gst.Pad, name string, err error) {
	a.log.Warn("continuing without audio", "caps", name, "err", err)
	a.gone = true
	a.graph.drop(pad)
}

// addFirewall keeps a failure of the audio branch from reaching the
// demuxer, which feeds the video from the same thread: a flow error returned
// by its audio pad (not-negotiated when the decoder refuses the stream)
// would stop the whole run. The probe hands each buffer to the branch
// itself and answers OK to the demuxer whatever the branch returned; on a
// fatal return it cuts the audio off. Sticky events (caps, segment) still
// go the normal way, before the buffer probes run.
func (a *audioBranch) addFirewall(pad *gst.Pad) {
	pad.AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		if a.cut.Load() {
			return gst.PadProbeDrop
		}
		buf := info.GetBuffer()
		peer := pad.GetPeer()
		if buf == nil || peer == nil {
			return gst.PadProbeOK
		}
		if ret := peer.Chain(buf); ret <= gst.FlowNotNegotiated {
			if !a.cut.Swap(true) {
				a.log.Debug("audio branch refused a buffer: cutting the audio off", "flow", ret.String())
			}
		}
		return gst.PadProbeDrop // the buffer went to the branch already
	})
}

// isAudioElement reports whether an element (by name) belongs to the audio
// branch: buildLocked names them all audio_*.
func isAudioElement(name string) bool { return strings.HasPrefix(name, "audio_") }

// onError handles an error message of an audio element: the audio is cut
// off (the bus sync handler already stopped feeding it) and the run goes on
// with video only. It reports whether msg was such an error.
func (a *audioBranch) onError(msg *gst.Message) bool {
	if !isAudioElement(msg.Source()) {
		return false
	}
	a.cut.Store(true) // normally set by the bus sync handler already
	text := a.red.redact(msg.ParseError().Error())
	a.mu.Lock()
	first := !a.failed
	a.failed, a.gone = true, true
	announced := a.sealed && a.track != nil
	if !a.sealed {
		a.track, a.built = nil, false
	}
	end := a.end
	a.mu.Unlock()
	if !first {
		return true
	}
	if announced {
		a.log.Warn("audio failed: continuing with video only; the audio track gets no more frames", "element", msg.Source(), "err", text)
	} else {
		a.log.Warn("audio failed: continuing with video only", "element", msg.Source(), "err", text)
	}
	if end != nil {
		// The failed branch never ends by itself: end it, so the pipeline
		// still reports EOS when the video ends.
		end.GetStaticPad("sink").SendEvent(gst.NewEOSEvent())
	}
	a.gate.maybeOpen()
	return true
}
