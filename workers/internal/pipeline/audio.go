package pipeline

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"

	"github.com/go-gst/go-gst/gst"
)

// aacCheckResult says whether an audio stream can go straight to the
// decoder or must wait for its first buffer.
type aacCheckResult int

const (
	aacOK       aacCheckResult = iota // decodable as announced
	aacRawNoPCE                       // raw AAC, channelConfiguration 0 and no PCE in codec_data
	aacADTS                           // ADTS: its headers tell (aacparse rejects channel configuration 0)
)

// aacFixup is how the audio branch repairs a stream's AAC signalling.
type aacFixup struct {
	caps     string // merged into the stream's caps by a capssetter; "" for none
	noParser bool   // feed the decoder directly: aacparse rejects ADTS with channel configuration 0
}

var (
	reStreamFormat = regexp.MustCompile(`stream-format=\(string\)([\w-]+)`)
	reCodecData    = regexp.MustCompile(`codec_data=\(buffer\)([0-9a-fA-F]+)`)
)

// aacCheck inspects the caps of a new audio pad. An error means the audio
// cannot be decoded at all.
func aacCheck(name, caps string) (aacCheckResult, ascInfo, error) {
	if name != "audio/mpeg" {
		return aacOK, ascInfo{}, nil
	}
	if v := capsInt(reMPEGVer, caps); v != 2 && v != 4 {
		return aacOK, ascInfo{}, nil
	}
	format := ""
	if m := reStreamFormat.FindStringSubmatch(caps); m != nil {
		format = m[1]
	}
	switch format {
	case "adts":
		return aacADTS, ascInfo{}, nil
	case "raw":
		m := reCodecData.FindStringSubmatch(caps)
		if m == nil {
			return aacOK, ascInfo{}, nil
		}
		b, err := hex.DecodeString(m[1])
		if err != nil {
			return aacOK, ascInfo{}, nil
		}
		a, err := parseASC(b)
		if err != nil || a.channelConfig != 0 || a.hasPCE {
			return aacOK, a, nil // the decoder judges
		}
		if a.objectType != 2 || a.sbr || a.sfi >= len(aacRates) {
			return aacOK, a, fmt.Errorf("%w: audio object type %d, sbr %t, sampling frequency index %d", errAACLayout, a.objectType, a.sbr, a.sfi)
		}
		return aacRawNoPCE, a, nil
	}
	return aacOK, ascInfo{}, nil
}

// analyseAAC works out, from the first buffer of a stream aacCheck held
// back, how to decode it. pce, for ADTS, is the element to put in front of
// every raw data block.
func analyseAAC(check aacCheckResult, asc ascInfo, data []byte) (fix aacFixup, pce []byte, l aacLayout, err error) {
	switch check {
	case aacRawNoPCE:
		l, err = layoutFromRawBlock(data, asc.sfi)
		if err != nil {
			return fix, nil, l, err
		}
		cfg := ascWithPCE(asc.sfi, asc.frameLength, l)
		fix.caps = fmt.Sprintf("audio/mpeg,channels=(int)%d,codec_data=(buffer)%s", l.channels(), codecDataHex(cfg))
		return fix, nil, l, nil
	case aacADTS:
		frames, err := splitADTS(data)
		if err != nil {
			return fix, nil, l, err
		}
		f := frames[0]
		if f.channelConfig != 0 {
			return fix, nil, l, nil // aacparse and the decoder know what to do
		}
		if f.objectType != 2 || f.sfi >= len(aacRates) {
			return fix, nil, l, fmt.Errorf("%w: ADTS audio object type %d, sampling frequency index %d", errAACLayout, f.objectType, f.sfi)
		}
		l, err = layoutFromRawBlock(f.block, f.sfi)
		if err != nil {
			return fix, nil, l, err
		}
		fix.caps = fmt.Sprintf("audio/mpeg,channels=(int)%d,rate=(int)%d", l.channels(), aacRates[f.sfi])
		fix.noParser = true
		return fix, pceElement(f.sfi, l), l, nil
	}
	return fix, nil, l, nil
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
func (p *Pipeline) addAACProbe(pad *gst.Pad, name, caps string, check aacCheckResult, asc ascInfo) {
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
			return p.insertPCE(buf, pce, &warned)
		}
		fix, framePCE, layout, err := analyseAAC(check, asc, buf.Bytes())
		if err != nil && !errors.Is(err, errAACLayout) && tries < aacProbeBuffers-1 {
			tries++
			p.log.Debug("AAC frame not understood: trying the next one", "err", err)
			return gst.PadProbeDrop
		}
		decided = true
		p.mu.Lock()
		p.audioPending = false
		switch {
		case p.closed:
		case p.gateOpen:
			p.log.Warn("audio decodable only after the tracks were announced without it: dropping it", "caps", name)
			p.audioGone = true
			p.dropLocked(pad)
		case err != nil:
			p.giveUpAudioLocked(pad, name, err)
		default:
			if berr := p.buildAudioLocked(pad, name, caps, fix); berr != nil {
				p.giveUpAudioLocked(pad, name, berr)
				break
			}
			p.audioBuilt = true
			pce = framePCE
			if fix.caps != "" {
				p.log.Info("AAC without its channel layout: recovered it from the bitstream",
					"channels", layout.channels(), "elements", layout.String())
			}
		}
		p.mu.Unlock()
		p.maybeOpenGate()
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
func (p *Pipeline) insertPCE(buf *gst.Buffer, pce []byte, warned *bool) gst.PadProbeReturn {
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
			p.log.Warn("dropping AAC frames that cannot be given their channel layout", "err", err)
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

// giveUpAudioLocked drops the audio stream of pad: the run goes on with
// video only, and the tracks are announced without audio.
func (p *Pipeline) giveUpAudioLocked(pad *gst.Pad, name string, err error) {
	p.log.Warn("continuing without audio", "caps", name, "err", err)
	p.audioGone = true
	p.dropLocked(pad)
}

// addAudioFirewall keeps a failure of the audio branch from reaching the
// demuxer, which feeds the video from the same thread: a flow error returned
// by its audio pad (not-negotiated when the decoder refuses the stream)
// would stop the whole run. The probe hands each buffer to the branch
// itself and answers OK to the demuxer whatever the branch returned; on a
// fatal return it cuts the audio off. Sticky events (caps, segment) still
// go the normal way, before the buffer probes run.
func (p *Pipeline) addAudioFirewall(pad *gst.Pad) {
	pad.AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		if p.audioCut.Load() {
			return gst.PadProbeDrop
		}
		buf := info.GetBuffer()
		peer := pad.GetPeer()
		if buf == nil || peer == nil {
			return gst.PadProbeOK
		}
		if ret := peer.Chain(buf); ret <= gst.FlowNotNegotiated {
			if !p.audioCut.Swap(true) {
				p.log.Debug("audio branch refused a buffer: cutting the audio off", "flow", ret.String())
			}
		}
		return gst.PadProbeDrop // the buffer went to the branch already
	})
}

// isAudioElement reports whether an element (by name) belongs to the audio
// branch: buildAudioLocked names them all audio_*.
func isAudioElement(name string) bool { return strings.HasPrefix(name, "audio_") }

// onAudioError handles an error message of an audio element: the audio is
// cut off (the bus sync handler already stopped feeding it) and the run goes
// on with video only. It reports whether msg was such an error.
func (p *Pipeline) onAudioError(msg *gst.Message) bool {
	if !isAudioElement(msg.Source()) {
		return false
	}
	p.audioCut.Store(true) // normally set by the bus sync handler already
	text := p.redact(msg.ParseError().Error())
	p.mu.Lock()
	first := !p.audioFailed
	p.audioFailed, p.audioGone = true, true
	announced := p.gateOpen && p.audioTrack != nil
	if !p.gateOpen {
		p.audioTrack, p.audioBuilt = nil, false
	}
	sink := p.audioSink
	p.mu.Unlock()
	if !first {
		return true
	}
	if announced {
		p.log.Warn("audio failed: continuing with video only; the audio track gets no more frames", "element", msg.Source(), "err", text)
	} else {
		p.log.Warn("audio failed: continuing with video only", "element", msg.Source(), "err", text)
	}
	if sink != nil {
		// The failed branch never ends by itself: end it, so the pipeline
		// still reports EOS when the video ends.
		sink.GetStaticPad("sink").SendEvent(gst.NewEOSEvent())
	}
	p.maybeOpenGate()
	return true
}

// String lists the layout's elements, e.g. "front SCE0 CPE0, back CPE1 SCE1".
func (l aacLayout) String() string {
	var parts []string
	for _, g := range []struct {
		name  string
		elems []aacElem
	}{{"front", l.front}, {"side", l.side}, {"back", l.back}} {
		if len(g.elems) == 0 {
			continue
		}
		var es []string
		for _, e := range g.elems {
			kind := "SCE"
			if e.cpe {
				kind = "CPE"
			}
			es = append(es, fmt.Sprintf("%s%d", kind, e.tag))
		}
		parts = append(parts, g.name+" "+strings.Join(es, " "))
	}
	for _, tag := range l.lfe {
		parts = append(parts, fmt.Sprintf("LFE%d", tag))
	}
	return strings.Join(parts, ", ")
}
