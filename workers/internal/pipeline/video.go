package pipeline

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/go-gst/go-gst/gst"

	"github.com/dionysia/dionysia/workers/internal/hwprobe"
)

// videoDecode decodes the source's video once, into a tee that feeds every
// rendition. It is where two kinds of branch join (branch.go): filters sit
// inline between the decoder and the tee (what they output is what every
// rendition scales), legs hang off the tee beside the renditions and get
// the decoded frames at the source's size and rate.
//
//	queue ! parser ! decoder [! filter ...] ! tee ─┬─ rendition ...
//	                                               └─ queue ! leg ...
type videoDecode struct {
	log        *slog.Logger
	graph      *graph
	backend    hwprobe.Backend
	renditions *renditionSet
	gate       *trackGate
	failure    *failure
	health     *healthMeter
	filters    []branch // pointFilter, in order; set before the run starts
	legs       []branch // pointDecoded; set before the run starts

	mu    sync.Mutex
	built bool
	tee   *gst.Element
}

// attach decodes the video stream of pad. Only the first video stream is
// used: the others go to a fakesink.
func (v *videoDecode) attach(pad *gst.Pad, codec string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.built {
		v.log.Info("ignoring an extra video stream", "caps", codec)
		v.graph.drop(pad)
		return nil
	}
	if err := v.buildLocked(pad, codec); err != nil {
		v.graph.drop(pad)
		return err
	}
	v.built = true
	return nil
}

// isBuilt reports whether a video stream is being decoded.
func (v *videoDecode) isBuilt() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.built
}

// release drops the reference to the tee.
func (v *videoDecode) release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tee = nil
}

func (v *videoDecode) decoder(codec string) string {
	b := v.backend
	if codec == "video/x-h265" {
		if b.GPU() && b.Decoder == hwprobe.ElemNVH264Dec && gst.Find("nvh265dec") != nil {
			return "nvh265dec"
		}
		return "avdec_h265"
	}
	return b.Decoder
}

// buildLocked decodes the source's video into a tee. The renditions and the
// legs hang off the tee once the decoded caps (size, frame rate) are known.
func (v *videoDecode) buildLocked(pad *gst.Pad, codec string) error {
	parser := "h264parse"
	if codec == "video/x-h265" {
		parser = "h265parse"
	}
	head, err := v.graph.chain([]elemSpec{
		{factory: "queue", name: "vqueue"},
		spec(parser),
		{factory: v.decoder(codec), name: "vdec"},
	})
	if err != nil {
		return err
	}
	v.health.watchVideo(head[1].GetStaticPad("src"))
	last := head[2]
	for _, f := range v.filters {
		elems, err := f.build(v.graph, attachment{point: pointFilter, codec: codec})
		if err != nil {
			return fmt.Errorf("building filter %s: %w", f.name(), err)
		}
		if len(elems) == 0 {
			return fmt.Errorf("filter %s built no element", f.name())
		}
		if err := last.Link(elems[0]); err != nil {
			return fmt.Errorf("linking filter %s: %w", f.name(), err)
		}
		head = append(head, elems...)
		last = elems[len(elems)-1]
	}
	tee, err := v.graph.make("tee", "vtee")
	if err != nil {
		return err
	}
	if err := last.Link(tee); err != nil {
		return fmt.Errorf("linking the decoded video to its tee: %w", err)
	}
	head = append(head, tee)
	v.tee = tee
	// The caps event reaches the pad in front of the tee before the tee:
	// build the renditions there, so the tee forwards it to all of them.
	last.GetStaticPad("src").AddProbe(gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
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
		if err := v.onCaps(tee, src); err != nil {
			v.failure.fail(err)
			return gst.PadProbeDrop
		}
		v.gate.maybeOpen()
		return gst.PadProbeRemove
	})
	syncStates(head)
	if res := pad.Link(head[0].GetStaticPad("sink")); res != gst.PadLinkOK {
		return fmt.Errorf("linking source video: %s", res.String())
	}
	return nil
}

// onCaps builds what hangs off the tee once the decoded video is known.
func (v *videoDecode) onCaps(tee *gst.Element, src sourceVideo) error {
	if v.graph.isClosed() {
		return nil
	}
	if err := v.renditions.build(tee, src); err != nil {
		return err
	}
	for _, l := range v.legs {
		if err := attachLeg(v.graph, tee, l, attachment{point: pointDecoded, codec: src.Codec, video: src}); err != nil {
			return err
		}
	}
	return nil
}
