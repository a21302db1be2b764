package pipeline

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-gst/go-gst/gst"
)

// failure is the run's first error: whichever part fails first decides
// what Run returns, and every streaming thread stops at it.
type failure struct {
	log  *slog.Logger
	once sync.Once
	done chan struct{} // closed by the first fail
	err  error         // written once, before done is closed
}

func newFailure(log *slog.Logger) *failure { return &failure{log: log, done: make(chan struct{})} }

// fail records the run's first error and returns the recorded one.
func (f *failure) fail(err error) error {
	f.once.Do(func() {
		f.err = err
		close(f.done)
		f.log.Warn("pipeline failed", "err", err)
	})
	return f.err
}

// failed returns the recorded error, or nil while the run has not failed.
func (f *failure) failed() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// bus reads the GStreamer bus of a run and turns its error messages into
// classified errors (the Err* values). It holds no state of its own beyond
// what it is wired to.
type bus struct {
	bus   *gst.Bus
	log   *slog.Logger
	red   redactor
	audio *audioBranch
}

func newBus(pipe *gst.Pipeline, log *slog.Logger, red redactor, audio *audioBranch) *bus {
	b := &bus{bus: pipe.GetPipelineBus(), log: log, red: red, audio: audio}
	// The handler is stored with the bus until the bus is finalized: it
	// must not hold the bus (b.bus), or the bus and its file descriptors
	// would never be released.
	b.bus.SetSyncHandler(func(msg *gst.Message) gst.BusSyncReply {
		// Record an audio element's error from the thread that posts it,
		// before a demuxer error it may cause reaches the loop.
		if msg.Type() == gst.MessageError && isAudioElement(msg.Source()) {
			audio.recordError(red.redact(msg.ParseError().Error()))
		}
		return gst.BusPass
	})
	return b
}

// pop waits up to d for the next message (nil: none).
func (b *bus) pop(d time.Duration) *gst.Message { return b.bus.TimedPop(gst.ClockTime(d)) }

// popFiltered waits up to d for the next message of the given types.
func (b *bus) popFiltered(d time.Duration, types gst.MessageType) *gst.Message {
	return b.bus.TimedPopFiltered(gst.ClockTime(d), types)
}

// classify turns a GStreamer error message into a classified error.
func (b *bus) classify(msg *gst.Message) error {
	gerr := msg.ParseError()
	src := msg.Source()
	text := b.red.redact(gerr.Error())
	b.log.Debug("pipeline error", "element", src, "error", text, "debug", b.red.redact(gerr.DebugString()))
	audioErr := b.audio.err()
	switch {
	case isAudioElement(src):
		return fmt.Errorf("%w: audio: %s: %s", ErrBadStream, src, text)
	case audioErr != "" && strings.Contains(gerr.DebugString(), "not-negotiated"):
		// The audio's failure reached the demuxer before it was cut off.
		return fmt.Errorf("%w: audio: %s", ErrBadStream, audioErr)
	case src == "source":
		return fmt.Errorf("%w: %s", ErrSourceUnreachable, text)
	case src == "typefind" || strings.Contains(text, "determine type of stream"):
		return fmt.Errorf("%w: %s", ErrBadStream, text)
	case src == "vdec" || strings.Contains(src, "demux") || strings.Contains(src, "parse"):
		return fmt.Errorf("%w: %s: %s", ErrBadStream, src, text)
	default:
		return fmt.Errorf("pipeline error in %s: %s", src, text)
	}
}

// warn logs a warning message.
func (b *bus) warn(msg *gst.Message) {
	w := msg.ParseWarning()
	b.log.Warn("pipeline warning", "element", msg.Source(), "warning", b.red.redact(w.Error()))
}
