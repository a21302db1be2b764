package pipeline

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"

	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/dionysia/dionysia/workers/internal/packager"
)

// ThumbnailFile is the name of the live thumbnail in the stream directory.
const ThumbnailFile = "thumbnail.jpg"

// Thumbnail settings.
const (
	// ThumbnailMaxWidth is the widest thumbnail written (pkg/thumbnail's
	// MaxWidth): wider sources are scaled down to it, keeping their aspect
	// ratio; narrower ones keep their size.
	ThumbnailMaxWidth = 1280
	// thumbnailQuality is jpegenc's quality (0-100).
	thumbnailQuality = 80
)

// thumbnailer is the pointDecoded leg that keeps one decoded frame every
// interval of stream time (the first one at once), scales it to at most
// ThumbnailMaxWidth wide and writes it as {dir}/thumbnail.jpg.
//
//	tee ! queue(leaky, 1 buffer; sink probe: one frame per interval) ! videoconvertscale ! caps(WxH) ! jpegenc ! appsink
//
// The frames it does not keep are dropped by a probe on its queue's sink
// pad, in the tee's thread, before they are queued, converted or scaled: a
// dropped frame costs one timestamp comparison. The queue is leaky and holds
// one frame, so a slow JPEG encode or disk drops thumbnails and never holds
// the tee (and the renditions) back. A failed write is logged and the next
// frame due tries again; it never fails the run.
//
// It takes frames in system memory. On the CPU path that is what the
// decoder gives every leg. On the GPU path the tee's caps are what all its
// legs accept, so a decoder able to hand CUDA memory to the renditions'
// cudaupload negotiates system memory instead (cudaupload accepts both);
// that path is not run on this project's machines (no NVENC).
type thumbnailer struct {
	log      *slog.Logger
	dir      string
	interval time.Duration
	on       func(media.Thumbnail) // nil: none

	mu      sync.Mutex
	due     time.Duration // stream time of the next frame to keep
	started bool          // a frame was kept
	shownAt time.Time     // wall clock when the last kept frame passed
	width   int           // as scaled (set by build)
	height  int
	failing bool // the last write failed (logged once per streak)
}

func newThumbnailer(log *slog.Logger, dir string, interval time.Duration, on func(media.Thumbnail)) *thumbnailer {
	return &thumbnailer{log: log, dir: dir, interval: interval, on: on}
}

func (t *thumbnailer) name() string       { return "thumbnail" }
func (t *thumbnailer) point() attachPoint { return pointDecoded }

// queue is the leaky one-frame queue in front of the leg (queuedLeg), with
// the probe that keeps one frame per interval.
func (t *thumbnailer) queue(g *graph) (*gst.Element, error) {
	q, err := g.make("queue", "thumb_queue", prop{"leaky", "downstream"}, prop{"max-size-buffers", "1"},
		prop{"max-size-bytes", "0"}, prop{"max-size-time", "0"})
	if err != nil {
		return nil, err
	}
	q.GetStaticPad("sink").AddProbe(gst.PadProbeTypeBuffer, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		buf := info.GetBuffer()
		if buf == nil {
			return gst.PadProbeOK
		}
		if !t.keep(clockDuration(buf.PresentationTimestamp()), time.Now()) {
			return gst.PadProbeDrop
		}
		return gst.PadProbeOK
	})
	return q, nil
}

// keep decides whether the frame at stream time pts (-1: unknown) becomes
// the next thumbnail: the first frame, then the first one at least interval
// after the last kept one. Time going backwards (a new segment) restarts
// the count from that frame; frames without a timestamp are spaced by the
// wall clock.
func (t *thumbnailer) keep(pts time.Duration, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.started:
	case pts < 0:
		if now.Sub(t.shownAt) < t.interval {
			return false
		}
	case pts >= t.due, pts < t.due-t.interval:
	default:
		return false
	}
	t.started, t.shownAt = true, now
	if pts >= 0 {
		t.due = pts + t.interval
	}
	return true
}

// thumbnailSize fits a w×h frame into ThumbnailMaxWidth keeping its aspect
// ratio, in even dimensions (what every raw format and jpegenc accept).
func thumbnailSize(w, h int) (int, int) {
	if w <= 0 || h <= 0 {
		return 0, 0
	}
	tw := min(w, ThumbnailMaxWidth) &^ 1
	th := (h*tw + w/2) / w &^ 1
	return max(tw, 2), max(th, 2)
}

func (t *thumbnailer) build(g *graph, at attachment) ([]*gst.Element, error) {
	w, h := thumbnailSize(at.video.Width, at.video.Height)
	if w == 0 {
		return nil, fmt.Errorf("%w: decoded video without a size", ErrBadStream)
	}
	t.mu.Lock()
	t.width, t.height = w, h
	t.mu.Unlock()
	elems, err := g.chain([]elemSpec{
		{factory: "videoconvertscale", name: "thumb_scale"},
		capsSpec("video/x-raw,width=" + strconv.Itoa(w) + ",height=" + strconv.Itoa(h)),
		{factory: "jpegenc", name: "thumb_jpegenc", props: []prop{{"quality", strconv.Itoa(thumbnailQuality)}}},
		appsinkSpec("thumb_sink", "image/jpeg"),
	})
	if err != nil {
		return nil, err
	}
	app.SinkFromElement(elems[len(elems)-1]).SetCallbacks(&app.SinkCallbacks{NewSampleFunc: t.onSample})
	return elems, nil
}

func (t *thumbnailer) onSample(s *app.Sink) gst.FlowReturn {
	_, _, _, _, data, ok := pull(s)
	if !ok {
		return gst.FlowEOS
	}
	t.mu.Lock()
	th := media.Thumbnail{Path: filepath.Join(t.dir, ThumbnailFile), At: t.shownAt, Width: t.width, Height: t.height}
	t.mu.Unlock()
	err := packager.WriteFileAtomic(th.Path, data)
	t.mu.Lock()
	wasFailing := t.failing
	t.failing = err != nil
	t.mu.Unlock()
	if err != nil {
		if !wasFailing {
			t.log.Warn("writing the thumbnail (retrying with the next frame due)", "err", err)
		}
		return gst.FlowOK
	}
	if wasFailing {
		t.log.Info("writing the thumbnail works again")
	}
	if t.on != nil {
		t.on(th)
	}
	return gst.FlowOK
}
