package pipeline

import (
	"errors"
	"fmt"

	"github.com/go-gst/go-gst/gst"
)

// attachPoint is where a branch joins the pipeline (see doc.go).
type attachPoint int

const (
	// pointDecoded: a leg of the decoded video's tee, beside the
	// renditions. It gets raw frames at the source's size and frame rate
	// (a thumbnailer, a scene analyser). Attached when the decoded caps are
	// known, once per run.
	pointDecoded attachPoint = iota
	// pointFilter: inline between the video decoder and the tee, in the
	// order attached. What it outputs is what every rendition scales and
	// encodes (an overlay; a compositor that mixes a second input in).
	// Built with the video decode, before the decoded caps are known.
	pointFilter
	// pointEncoded: a leg of a tee after one rendition's encoder and
	// parser, beside the appsink. It gets H.264 access units (byte-stream,
	// one AU per buffer, SPS/PPS before each IDR). Attached once per
	// rendition (an RTMP push, a recorder).
	pointEncoded
	// pointAudio: a leg of a tee after the AAC encoder, beside the audio
	// appsink. It gets raw AAC frames (stereo 48 kHz, the ladder's audio).
	// Attached once per run, only when the source has audio that decodes;
	// an audio leg's elements are not named audio_*, so their errors fail
	// the run instead of cutting the audio off. An RTMP push takes this and
	// pointEncoded.
	pointAudio
)

func (a attachPoint) String() string {
	switch a {
	case pointDecoded:
		return "decoded"
	case pointFilter:
		return "filter"
	case pointEncoded:
		return "encoded"
	case pointAudio:
		return "audio"
	}
	return fmt.Sprintf("attachPoint(%d)", int(a))
}

// attachment tells a branch where it is being attached.
type attachment struct {
	point attachPoint
	codec string // the source's codec (caps name): video, or audio for pointAudio
	// video is the decoded source video (pointDecoded, pointEncoded; zero
	// for pointFilter, which is built before it is known).
	video sourceVideo
	// rendition is the rendition a pointEncoded leg follows.
	rendition *rung
}

// branch is a part that joins the pipeline at one attach point without the
// other parts knowing about it. Give it to Pipeline.attach before Run.
//
// build creates the branch's elements with g (g.make, g.chain: they are
// added to the run's pipeline and released with it), links them in order
// and returns them, upstream first. The pipeline links the attach point to
// the first one (a leg behind a queue of its own, so a leg never runs in
// the streaming thread of the renditions) and, for pointFilter, the last
// one to the tee; it starts them. Elements off that line (a second input's
// source feeding a compositor the filter returned) the branch links and
// starts itself (syncStates). build runs on a GStreamer streaming
// thread while the part it joins holds its lock: it must not block and must
// not call back into the pipeline. A leg must end in a sink that keeps up
// (or drops): a blocked leg stalls its tee, and with it the renditions. Its
// element errors fail the run like any other, so a branch whose failure
// must not stop the stream cuts itself off the way the audio branch does
// (audio.go, addFirewall).
type branch interface {
	name() string
	point() attachPoint
	build(g *graph, at attachment) ([]*gst.Element, error)
}

// queuedLeg is a leg that makes the queue attachLeg puts in front of it,
// instead of a plain one: a leaky queue, or a probe on the queue's sink
// pad that drops frames before they are queued (the thumbnailer). The
// queue is created with g like the branch's elements; attachLeg links and
// starts it.
type queuedLeg interface {
	queue(g *graph) (*gst.Element, error)
}

var errRan = errors.New("pipeline already ran")

// attach adds b to the run. It must be called before Run.
func (p *Pipeline) attach(b branch) error {
	if p.ran.Load() {
		return fmt.Errorf("attaching branch %s: %w", b.name(), errRan)
	}
	switch b.point() {
	case pointDecoded:
		p.video.legs = append(p.video.legs, b)
	case pointFilter:
		p.video.filters = append(p.video.filters, b)
	case pointEncoded:
		p.renditions.legs = append(p.renditions.legs, b)
	case pointAudio:
		p.audio.legs = append(p.audio.legs, b)
	default:
		return fmt.Errorf("branch %s: unknown attach point %s", b.name(), b.point())
	}
	return nil
}

// attachLeg hangs branch b off tee: tee ! queue ! b.
func attachLeg(g *graph, tee *gst.Element, b branch, at attachment) error {
	elems, err := b.build(g, at)
	if err != nil {
		return fmt.Errorf("building branch %s: %w", b.name(), err)
	}
	if len(elems) == 0 {
		return fmt.Errorf("branch %s built no element", b.name())
	}
	var q *gst.Element
	if ql, ok := b.(queuedLeg); ok {
		q, err = ql.queue(g)
	} else {
		q, err = g.make("queue", "")
	}
	if err != nil {
		return err
	}
	if err := q.Link(elems[0]); err != nil {
		return fmt.Errorf("linking branch %s: %w", b.name(), err)
	}
	syncStates(append([]*gst.Element{q}, elems...))
	if err := tee.Link(q); err != nil {
		return fmt.Errorf("linking branch %s to its tee: %w", b.name(), err)
	}
	return nil
}
