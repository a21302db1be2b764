package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"
)

// errClosed is returned by graph.make once the run is being torn down.
var errClosed = errors.New("pipeline torn down")

// graph owns the GStreamer pipeline object and creates the elements every
// part of the run adds to it. It is the only lock every part may take while
// holding its own (a leaf: graph never calls back into a part).
type graph struct {
	log *slog.Logger

	mu     sync.Mutex
	pipe   *gst.Pipeline
	closed bool
}

func newGraph(log *slog.Logger) (*graph, error) {
	pipe, err := gst.NewPipeline("")
	if err != nil {
		return nil, fmt.Errorf("creating pipeline: %w", err)
	}
	trackObject(pipe.Element)
	return &graph{log: log, pipe: pipe}, nil
}

// pipeline returns the GStreamer pipeline, nil after close.
func (g *graph) pipeline() *gst.Pipeline {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pipe
}

// isClosed reports whether the run is being torn down: callbacks of
// streaming threads build nothing more.
func (g *graph) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// close drops the reference to the pipeline (after it was set to NULL), so
// the Go finalizers release it.
func (g *graph) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.pipe = true, nil
}

// make creates an element, applies props (skipping, with a warning, those
// the element does not have) and adds it to the pipeline.
func (g *graph) make(factory, name string, props ...prop) (*gst.Element, error) {
	e, err := gst.NewElementWithName(factory, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMissingElement, factory)
	}
	trackObject(e)
	for _, pr := range props {
		if _, err := e.GetPropertyType(pr.Name); err != nil {
			g.log.Warn("element lacks property", "element", factory, "property", pr.Name)
			continue
		}
		e.SetArg(pr.Name, pr.Value)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errClosed
	}
	if err := g.pipe.Add(e); err != nil {
		return nil, fmt.Errorf("adding %s: %w", factory, err)
	}
	return e, nil
}

// chain creates elements in order and links each to the next.
func (g *graph) chain(specs []elemSpec) ([]*gst.Element, error) {
	out := make([]*gst.Element, 0, len(specs))
	for _, s := range specs {
		e, err := g.make(s.factory, s.name, s.props...)
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

// drop links pad to a fakesink: parsebin's streams must all be linked.
func (g *graph) drop(pad *gst.Pad) {
	if g.isClosed() {
		return
	}
	fs, err := g.make("fakesink", "", prop{"sync", "false"}, prop{"async", "false"}, prop{"enable-last-sample", "false"})
	if err != nil {
		g.log.Warn("dropping stream", "err", err)
		return
	}
	fs.SyncStateWithParent()
	if r := pad.Link(fs.GetStaticPad("sink")); r != gst.PadLinkOK {
		g.log.Warn("linking a dropped stream to fakesink", "result", r.String())
	}
}

type elemSpec struct {
	factory, name string
	props         []prop
}

func spec(factory string, props ...prop) elemSpec { return elemSpec{factory: factory, props: props} }

func capsSpec(caps string) elemSpec { return spec("capsfilter", prop{"caps", caps}) }

// appsinkSpec is an appsink for caps that hands samples to Go as fast as
// they come (no clock sync, no preroll, no queue of its own).
func appsinkSpec(name, caps string) elemSpec {
	return elemSpec{factory: "appsink", name: name, props: []prop{{"caps", caps},
		{"sync", "false"}, {"async", "false"}, {"enable-last-sample", "false"},
		{"emit-signals", "false"}, {"max-buffers", "0"}}}
}

// syncStates starts elements added to a playing pipeline, downstream first.
func syncStates(elems []*gst.Element) {
	for i := len(elems) - 1; i >= 0; i-- {
		elems[i].SyncStateWithParent()
	}
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
