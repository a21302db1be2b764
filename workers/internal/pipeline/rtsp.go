package pipeline

import (
	"fmt"
	"strings"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"
)

// rtspStreams follows the streams of an RTSP source: rtspsrc adds one RTP
// pad per stream of the session (and says no-more-pads after the last), each
// depayloaded and parsed by a parsebin of its own, which exposes the
// elementary stream. Every stream is known once rtspsrc said no-more-pads
// and each parsebin exposed its stream.
type rtspStreams struct {
	rtpPads  int  // RTP pads rtspsrc added
	exposed  int  // elementary streams the parsebins exposed
	allAdded bool // rtspsrc said no-more-pads
	bins     []connectedBin
}

type connectedBin struct {
	e *gst.Element
	h glib.SignalHandle
}

// complete reports whether every stream of the session is exposed.
func (r *rtspStreams) complete() bool { return r.allAdded && r.exposed >= r.rtpPads }

// buildRTSP wires an rtspsrc: its pads are RTP streams, parsed on their
// own; their elementary streams are routed as a demuxer's are.
func (s *source) buildRTSP(src *gst.Element) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.demux = src
	h1, err := src.Connect("pad-added", func(_ *gst.Element, pad *gst.Pad) { s.onRTPPad(pad) })
	if err != nil {
		return fmt.Errorf("connecting pad-added: %w", err)
	}
	h2, err := src.Connect("no-more-pads", func(_ *gst.Element) {
		s.mu.Lock()
		s.rtsp.allAdded = true
		done := s.rtsp.complete()
		s.mu.Unlock()
		if done {
			s.onNoMorePads()
		}
	})
	if err != nil {
		return fmt.Errorf("connecting no-more-pads: %w", err)
	}
	s.signals = []glib.SignalHandle{h1, h2}
	return nil
}

// onRTPPad parses one RTP stream of an RTSP source (depayloader and parser,
// chosen by parsebin from the stream's encoding).
func (s *source) onRTPPad(pad *gst.Pad) {
	caps := pad.GetCurrentCaps()
	if caps == nil {
		caps = pad.QueryCaps(nil)
	}
	if caps == nil || caps.GetSize() == 0 || !strings.HasPrefix(caps.GetStructureAt(0).Name(), "application/x-rtp") {
		s.graph.drop(pad)
		return
	}
	if s.graph.isClosed() {
		return
	}
	s.mu.Lock()
	s.rtsp.rtpPads++
	n := s.rtsp.rtpPads
	s.mu.Unlock()
	bin, err := s.graph.make("parsebin", fmt.Sprintf("rtp_parse%d", n))
	if err != nil {
		s.failure.fail(err)
		return
	}
	h, err := bin.Connect("pad-added", func(_ *gst.Element, p *gst.Pad) {
		s.mu.Lock()
		s.rtsp.exposed++
		done := s.rtsp.complete()
		s.mu.Unlock()
		c := p.GetCurrentCaps()
		if c == nil {
			c = p.QueryCaps(nil)
		}
		if c != nil && c.GetSize() > 0 && strings.HasPrefix(c.GetStructureAt(0).Name(), "video/") {
			dropUntilKeyframe(p)
		}
		s.onPadAdded(p)
		if done {
			s.onNoMorePads()
		}
	})
	if err != nil {
		s.failure.fail(fmt.Errorf("connecting pad-added: %w", err))
		return
	}
	s.mu.Lock()
	s.rtsp.bins = append(s.rtsp.bins, connectedBin{e: bin, h: h})
	s.mu.Unlock()
	if r := pad.Link(bin.GetStaticPad("sink")); r != gst.PadLinkOK {
		s.failure.fail(fmt.Errorf("%w: linking an rtsp stream to its parser: %s", ErrBadStream, r.String()))
		return
	}
	bin.SyncStateWithParent()
}

// dropUntilKeyframe drops the video in front of the first keyframe. The
// edge sends an RTSP reader every packet from the moment it joins (unlike
// RTMP, from the next keyframe on): the frames before the first keyframe
// reference pictures the decoder never saw and would decode to garbage. The
// health meter then sees the video start at that keyframe, as over RTMP.
func dropUntilKeyframe(pad *gst.Pad) {
	pad.AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		buf := info.GetBuffer()
		if buf == nil || buf.HasFlags(gst.BufferFlagDeltaUnit) {
			return gst.PadProbeDrop
		}
		return gst.PadProbeRemove
	})
}
