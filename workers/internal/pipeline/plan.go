package pipeline

import (
	"fmt"
	"math"

	"github.com/dionysia/dionysia/pkg/ladder"
)

// sourceVideo is what the pipeline knows of the source's video once its
// caps are known.
type sourceVideo struct {
	Codec         string // caps name, e.g. video/x-h264
	Width, Height int
	FPSNum        int // 0 when the source does not say
	FPSDen        int
}

func (s sourceVideo) fps() float64 {
	if s.FPSNum <= 0 || s.FPSDen <= 0 {
		return 0
	}
	return float64(s.FPSNum) / float64(s.FPSDen)
}

// rung is a rendition the pipeline encodes, with its size and frame rate
// resolved against the source.
type rung struct {
	ladder.Rendition
	Width, Height  int // as encoded (shadow the ladder's, which may be 0)
	FPSNum, FPSDen int
}

func (r rung) fps() float64 { return float64(r.FPSNum) / float64(r.FPSDen) }

// gopFrames is the keyframe interval in frames (at least 1).
func (r rung) gopFrames() int {
	return max(1, int(math.Ceil(r.fps()*r.KeyframeInterval-1e-6)))
}

// defaultFPS is used when the source does not state its frame rate.
const defaultFPS = 30

// plan resolves the ladder against the source: rungs larger than the source
// (in width or height) are skipped, never upscaled; the passthrough rung
// (0×0) takes the source size rounded down to even; a frame rate of 0 takes
// the source's (capped at ladder.MaxFrameRate) and a rung never runs faster
// than the source. When every rung is larger than the source, the smallest
// one is kept at the source's size so the stream still plays. notes say what
// was changed, for the log.
func plan(l ladder.Ladder, src sourceVideo) (rungs []rung, notes []string) {
	srcFPS := src.fps()
	if srcFPS == 0 {
		notes = append(notes, fmt.Sprintf("source frame rate unknown: assuming %d fps", defaultFPS))
	}
	fit := func(r ladder.Rendition, w, h int) rung {
		out := rung{Rendition: r, Width: w &^ 1, Height: h &^ 1}
		want := r.FrameRate
		switch {
		case srcFPS == 0 && want == 0:
			out.FPSNum, out.FPSDen = defaultFPS, 1
		case want == 0 || (srcFPS > 0 && want >= srcFPS-0.01):
			if srcFPS > ladder.MaxFrameRate {
				out.FPSNum, out.FPSDen = fraction(ladder.MaxFrameRate)
			} else {
				out.FPSNum, out.FPSDen = src.FPSNum, src.FPSDen
			}
			if want > srcFPS+0.01 && srcFPS > 0 {
				notes = append(notes, fmt.Sprintf("rendition %s: %g fps exceeds the source's %.3g fps: keeping the source's", r.Name, want, srcFPS))
			}
		default:
			out.FPSNum, out.FPSDen = fraction(want)
		}
		return out
	}
	var smallest *ladder.Rendition
	for i, r := range l.Renditions {
		if r.Width == 0 && r.Height == 0 {
			rungs = append(rungs, fit(r, src.Width, src.Height))
			continue
		}
		if r.Width > src.Width || r.Height > src.Height {
			notes = append(notes, fmt.Sprintf("rendition %s (%dx%d) skipped: larger than the source (%dx%d)", r.Name, r.Width, r.Height, src.Width, src.Height))
			if smallest == nil || r.Width*r.Height < smallest.Width*smallest.Height {
				smallest = &l.Renditions[i]
			}
			continue
		}
		rungs = append(rungs, fit(r, r.Width, r.Height))
	}
	if len(rungs) == 0 && smallest != nil {
		notes = append(notes, fmt.Sprintf("every rendition is larger than the source: encoding %s at the source size %dx%d", smallest.Name, src.Width&^1, src.Height&^1))
		rungs = append(rungs, fit(*smallest, src.Width, src.Height))
	}
	return rungs, notes
}

// fraction turns a frame rate into a GStreamer fraction: integers exactly,
// NTSC rates (29.97, 59.94, 23.976) as n*1000/1001, anything else to a
// millisecond of precision.
func fraction(fps float64) (num, den int) {
	if r := math.Round(fps); math.Abs(fps-r) < 0.001 {
		return int(r), 1
	}
	if n := math.Round(fps * 1.001); math.Abs(fps*1.001-n) < 0.002 {
		return int(n) * 1000, 1001
	}
	return int(math.Round(fps * 1000)), 1000
}
