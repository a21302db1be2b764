package pipeline

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/go-gst/go-gst/gst"
)

// keyframePolicy forces keyframes on the same timestamps in every
// rendition: at each multiple of a rendition's keyframe interval and of the
// segment duration, counted from the first frame any rendition encoded.
// Every rendition sees the same decoded timestamps, so their IDR frames fall
// on the same instants whatever their frame rates. Its only shared state is
// that origin, set once; each rendition keeps its own keyframeClock.
type keyframePolicy struct {
	segment time.Duration // 0: keyframe intervals only
	origin  atomic.Int64  // first PTS seen by an encoder, +1 (0: none yet)
}

// keyframeClock is one rendition's view of the policy. It is used only by
// that rendition encoder's streaming thread.
type keyframeClock struct {
	interval time.Duration // the rendition's keyframe interval
	prev     time.Duration // relative PTS of the previous frame
	havePrev bool
}

// attach forces a keyframe in front of the encoder whose sink pad is pad
// whenever a frame is due one.
func (k *keyframePolicy) attach(pad *gst.Pad, c *keyframeClock) {
	pad.AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		buf := info.GetBuffer()
		if buf == nil {
			return gst.PadProbeOK
		}
		if pts := buf.PresentationTimestamp(); pts != gst.ClockTimeNone && k.due(c, time.Duration(pts)) {
			pad.SendEvent(forceKeyUnitEvent())
		}
		return gst.PadProbeOK
	})
}

// due reports whether the frame at pts is the first one at or past a
// keyframe boundary of c.
func (k *keyframePolicy) due(c *keyframeClock, pts time.Duration) bool {
	if k.origin.Load() == 0 {
		k.origin.CompareAndSwap(0, int64(pts)+1)
	}
	rel := pts - time.Duration(k.origin.Load()-1)
	if !c.havePrev {
		c.havePrev, c.prev = true, rel
		return false // the first frame is an IDR anyway
	}
	prev := c.prev
	c.prev = rel
	return crosses(prev, rel, c.interval) || crosses(prev, rel, k.segment)
}

// forceKeyUnitEvent is GStreamer's downstream force-key-unit event
// (gst_video_event_new_downstream_force_key_unit without timestamps: the next
// frame becomes an IDR, with SPS/PPS).
func forceKeyUnitEvent() *gst.Event {
	s := gst.NewStructure("GstForceKeyUnit")
	_ = s.SetValue("all-headers", true)
	return gst.NewCustomEvent(gst.EventTypeCustomDownstream, s)
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
