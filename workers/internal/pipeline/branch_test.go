package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/ladder"
)

// frameCounter is a branch that counts the buffers reaching it: at
// pointDecoded, pointEncoded and pointAudio a leg ending in a fakesink, at
// pointFilter an identity element that passes every frame on to the
// renditions.
type frameCounter struct {
	at attachPoint

	mu       sync.Mutex
	counts   map[string]int // by rendition ("" outside pointEncoded)
	caps     []attachment   // what each build was told
	lastSize [2]int         // size of the last frame seen (raw video only)
}

func newFrameCounter(at attachPoint) *frameCounter {
	return &frameCounter{at: at, counts: map[string]int{}}
}

func (c *frameCounter) name() string       { return "counter-" + c.at.String() }
func (c *frameCounter) point() attachPoint { return c.at }

func (c *frameCounter) build(g *graph, at attachment) ([]*gst.Element, error) {
	key := ""
	if at.rendition != nil {
		key = at.rendition.Name
	}
	c.mu.Lock()
	c.caps = append(c.caps, at)
	c.mu.Unlock()
	var e *gst.Element
	var err error
	if c.at == pointFilter {
		e, err = g.make("identity", "")
	} else {
		e, err = g.make("fakesink", "", prop{"sync", "false"}, prop{"async", "false"}, prop{"enable-last-sample", "false"})
	}
	if err != nil {
		return nil, err
	}
	e.GetStaticPad("sink").AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.counts[key]++
		if caps := pad.GetCurrentCaps(); caps != nil {
			s := caps.String()
			c.lastSize = [2]int{capsInt(reWidth, s), capsInt(reHeight, s)}
		}
		return gst.PadProbeOK
	})
	return []*gst.Element{e}, nil
}

func (c *frameCounter) snapshot() (map[string]int, []attachment, [2]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.counts {
		out[k] = v
	}
	return out, append([]attachment(nil), c.caps...), c.lastSize
}

// TestBranches attaches a branch at every attach point of the real pipeline
// and checks each sees every frame it should while the renditions still
// deliver all of theirs.
func TestBranches(t *testing.T) {
	lad := ladder.Ladder{Renditions: []ladder.Rendition{
		{Name: "a", Width: 320, Height: 180, VideoBitrateKbps: 300, FrameRate: 30, Preset: "ultrafast"},
		{Name: "b", Width: 160, Height: 90, VideoBitrateKbps: 100, FrameRate: 15, Preset: "ultrafast"},
	}}
	decoded, filter, encoded, audio := newFrameCounter(pointDecoded), newFrameCounter(pointFilter), newFrameCounter(pointEncoded), newFrameCounter(pointAudio)
	sink := newRecordingSink(t)
	p, err := New(Config{StreamID: "branches", Source: fileSource(clipTiny(t)), Ladder: lad, EncoderThreads: 1,
		SegmentDuration: time.Second, Logger: testLogger(t)})
	require.NoError(t, err)
	for _, b := range []branch{decoded, filter, encoded, audio} {
		require.NoError(t, p.attach(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.Run(ctx, sink))
	sink.close()

	// The 2 s 30 fps clip: 60 decoded frames; rendition b keeps 30.
	require.Equal(t, []string{"a", "b"}, renditionNames(sink))
	require.Equal(t, []int{60, 30}, sink.count)
	checkKeyframesAligned(t, sink)

	counts, builds, size := filter.snapshot()
	require.Equal(t, map[string]int{"": 60}, counts, "the filter sees every decoded frame")
	require.Len(t, builds, 1)
	require.Equal(t, "video/x-h264", builds[0].codec)
	require.Equal(t, [2]int{320, 180}, size)

	counts, builds, size = decoded.snapshot()
	require.Equal(t, map[string]int{"": 60}, counts, "the decoded leg sees every frame")
	require.Len(t, builds, 1)
	require.Equal(t, sourceVideo{Codec: "video/x-h264", Width: 320, Height: 180, FPSNum: 30, FPSDen: 1}, builds[0].video)
	require.Equal(t, [2]int{320, 180}, size)

	counts, builds, _ = encoded.snapshot()
	require.Equal(t, map[string]int{"a": 60, "b": 30}, counts, "the encoded legs see every access unit the sink got")
	require.Len(t, builds, 2)

	counts, builds, _ = audio.snapshot()
	require.Positive(t, sink.audioFrames)
	require.Equal(t, map[string]int{"": sink.audioFrames}, counts, "the audio leg sees every AAC frame the sink got")
	require.Len(t, builds, 1)
	require.Equal(t, "audio/mpeg", builds[0].codec)

	require.ErrorIs(t, p.attach(newFrameCounter(pointDecoded)), errRan)
}

// TestAudioLegWhenTheAudioFails: when the audio branch fails (a reserved
// channel configuration the decoder refuses), its legs are ended with it, so
// the run still ends at the end of the stream, with video only.
func TestAudioLegWhenTheAudioFails(t *testing.T) {
	clip := mp4WithASC(t, "reserved-leg", [2]byte{0x11, 0xC0})
	sink := newRecordingSink(t)
	p, err := New(Config{Source: fileSource(clip), Ladder: builtin(t, ladder.BuiltinPassthrough), Logger: testLogger(t)})
	require.NoError(t, err)
	audio := newFrameCounter(pointAudio)
	require.NoError(t, p.attach(audio))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.Run(ctx, sink))
	sink.close()
	require.Equal(t, 90, sink.count[0], "3 s of video at 30 fps")
	require.Nil(t, sink.audio)
	_, builds, _ := audio.snapshot()
	require.Len(t, builds, 1, "the leg was attached to the audio branch before it failed")
}
