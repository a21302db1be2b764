package hwprobe

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-gst/go-gst/gst"

	"github.com/dionysia/dionysia/workers/internal/gstinit"
)

// gstRegistry is the real GStreamer registry and real test pipelines.
type gstRegistry struct{}

func (gstRegistry) HasElement(name string) bool {
	gstinit.Init()
	return gst.Find(name) != nil
}

func (gstRegistry) HasPlugin(name string) bool {
	gstinit.Init()
	p, err := gst.GetRegistry().FindPlugin(name)
	return err == nil && p != nil
}

func (gstRegistry) TestEncode(ctx context.Context, b Backend) error {
	gstinit.Init()
	return runLaunch(ctx, TestLaunch(b))
}

// TestLaunch is the gst-launch description of b's test encode: one second of
// 320x240 test video scaled, encoded, parsed and decoded again.
func TestLaunch(b Backend) string {
	var s strings.Builder
	s.WriteString("videotestsrc num-buffers=30 pattern=smpte ! video/x-raw,width=640,height=360,framerate=30/1 ! ")
	switch {
	case b.Upload != "":
		fmt.Fprintf(&s, "videoconvert ! video/x-raw,format=NV12 ! %s ! %s ! video/x-raw(memory:CUDAMemory),width=320,height=240 ! ", b.Upload, b.Scaler)
		if b.Convert != "" {
			fmt.Fprintf(&s, "%s ! video/x-raw(memory:CUDAMemory),format=NV12 ! ", b.Convert)
		}
	case b.GPU():
		fmt.Fprintf(&s, "%s ! video/x-raw,format=NV12,width=320,height=240 ! ", b.Scaler)
	default:
		fmt.Fprintf(&s, "%s ! video/x-raw,format=I420,width=320,height=240 ! ", b.Scaler)
	}
	if b.Encoder == ElemX264 {
		s.WriteString("x264enc speed-preset=ultrafast threads=1 ! ")
	} else {
		s.WriteString(b.Encoder + " ! ")
	}
	fmt.Fprintf(&s, "h264parse ! %s ! fakesink sync=false", b.Decoder)
	return s.String()
}

// runLaunch runs a finite pipeline to EOS and returns its first error.
func runLaunch(ctx context.Context, launch string) error {
	p, err := gst.NewPipelineFromString(launch)
	if err != nil {
		return fmt.Errorf("building test pipeline: %w", err)
	}
	defer func() { _ = p.SetState(gst.StateNull) }()
	if err := p.SetState(gst.StatePlaying); err != nil {
		return fmt.Errorf("starting test pipeline: %w", err)
	}
	bus := p.GetPipelineBus()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("test encode did not finish: %w", err)
		}
		msg := bus.TimedPopFiltered(gst.ClockTime(100*time.Millisecond), gst.MessageEOS|gst.MessageError)
		if msg == nil {
			continue
		}
		switch msg.Type() {
		case gst.MessageEOS:
			return nil
		case gst.MessageError:
			gerr := msg.ParseError()
			return fmt.Errorf("%s: %s (%s)", msg.Source(), gerr.Error(), gerr.DebugString())
		}
	}
}
