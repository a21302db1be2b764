package vod

import (
	"encoding/xml"
	"fmt"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/stretchr/testify/require"
)

var start = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

const prefix = "assets/0b0e5c1e-8c2a-4c57-9a38-5d2b9f0b6a11/"

// seg is a segment of rendition r in run token-run, number n, starting at
// offset s seconds, lasting d seconds, of size bytes.
func seg(r string, token, run int, n uint64, s, d float64, size int64) *segment {
	init := fmt.Sprintf("%s%s/init-%d-%d.mp4", prefix, r, token, run)
	return &segment{
		RecordedObject: job.RecordedObject{
			Kind: job.ObjectSegment, Rendition: r, Key: fmt.Sprintf("%s%s/%d-%d.m4s", prefix, r, token, n),
			Run: run, Number: n, Init: init, Start: start.Add(seconds(s)), DurationS: d,
			MediaStart: uint64(s * 90000),
		},
		size: size, run: runOf(init),
	}
}

func newTrack(name string, desc job.RecordedTrack, segs ...*segment) *track {
	t := &track{name: name, audio: desc.Audio, desc: desc, segs: segs}
	arrange(t)
	return t
}

var (
	video = job.RecordedTrack{Codec: "avc1.64001f", Timescale: 90000, Width: 1280, Height: 720, FrameRate: "30000/1001", Bandwidth: 3_000_000}
	audio = job.RecordedTrack{Audio: true, Codec: "mp4a.40.2", Timescale: 48000, Channels: 2, SampleRate: 48000, Bandwidth: 128_000}
)

func TestMediaPlaylist(t *testing.T) {
	tr := newTrack("720p", video,
		seg("720p", 5, 0, 8, 4, 2, 500_000), // out of order: arrange sorts by start
		seg("720p", 5, 0, 6, 0, 2.0004, 500_000),
		seg("720p", 5, 0, 7, 2, 2, 750_000),
		// a lost segment (9): a number jump
		seg("720p", 5, 0, 10, 8, 2, 500_000),
		// a failover: another worker's run, 3.5 s later, a short first
		// segment (whose rate, 8 Mb/s, is not the peak)
		seg("720p", 9, 1, 11, 13.5, 0.5, 500_000),
		// the same run and the next number, but 0.6 s late: a gap
		seg("720p", 9, 1, 12, 15.6, 2.5, 500_000),
		// 0.4 s late: still contiguous
		seg("720p", 9, 1, 13, 18.5, 2, 500_000),
	)
	require.Equal(t, `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:3
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init-5-0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T10:00:00.000Z
#EXTINF:2.000,
5-6.m4s
#EXTINF:2.000,
5-7.m4s
#EXTINF:2.000,
5-8.m4s
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T10:00:08.000Z
#EXTINF:2.000,
5-10.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init-9-1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T10:00:13.500Z
#EXTINF:0.500,
9-11.m4s
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-12-02T10:00:15.600Z
#EXTINF:2.500,
9-12.m4s
#EXTINF:2.000,
9-13.m4s
#EXT-X-ENDLIST
`, mediaPlaylist(tr, prefix+"720p/"))
	// The peak is the highest full segment's rate, the short one left out.
	require.Equal(t, 3_000_000, tr.bandwidth())
}

func TestTargetDurationIsTheCeiling(t *testing.T) {
	for _, c := range []struct {
		d    float64
		want string
	}{{2, "2"}, {2.0004, "2"}, {2.001, "3"}, {6.5, "7"}} {
		tr := newTrack("audio", audio, seg("audio", 1, 0, 0, 0, c.d, 1000))
		require.Contains(t, mediaPlaylist(tr, prefix+"audio/"), "#EXT-X-TARGETDURATION:"+c.want+"\n", "duration %v", c.d)
	}
}

func TestMultivariant(t *testing.T) {
	a := &asset{
		prefix: prefix,
		video: []*track{
			newTrack("720p", video, seg("720p", 5, 0, 1, 0, 2, 750_000), seg("720p", 5, 0, 2, 2, 2, 250_000)),
			newTrack("360p", job.RecordedTrack{Codec: "avc1.64001e", Width: 640, Height: 360, FrameRate: "30"}, seg("360p", 5, 0, 1, 0, 2, 200_000)),
		},
		audio: []*track{newTrack("audio", audio, seg("audio", 5, 0, 1, 0, 2, 32_000))},
	}
	require.Equal(t, `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=3128000,AVERAGE-BANDWIDTH=2128000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="audio"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=928000,AVERAGE-BANDWIDTH=928000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO="audio"
360p/index.m3u8
`, multivariant(a))

	audioOnly := &asset{prefix: prefix, audio: a.audio}
	require.Equal(t, `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"
audio/index.m3u8
`, multivariant(audioOnly))
}

func TestManifestPeriods(t *testing.T) {
	v := newTrack("720p", video,
		seg("720p", 5, 0, 1, 0, 2, 1000), seg("720p", 5, 0, 2, 2, 2, 1000),
		seg("720p", 9, 0, 1, 10, 2, 1000), seg("720p", 9, 0, 2, 12, 1, 1000))
	au := newTrack("audio", audio,
		seg("audio", 5, 0, 1, 0, 2, 100), seg("audio", 5, 0, 2, 2, 2, 100), seg("audio", 5, 0, 3, 4, 0.02, 100),
		seg("audio", 9, 0, 1, 10, 2, 100), seg("audio", 9, 0, 2, 12, 1, 100))
	a := &asset{prefix: prefix, video: []*track{v}, audio: []*track{au}, inits: map[string]job.RecordedObject{}}
	for _, t := range a.tracks() {
		for _, s := range t.segs {
			desc := t.desc
			a.inits[s.Init] = job.RecordedObject{Kind: job.ObjectInit, Key: s.Init, Track: &desc}
		}
	}
	out, err := manifest(a)
	require.NoError(t, err)
	var m mpdXML
	require.NoError(t, xml.Unmarshal(out, &m), "%s", out)
	require.Equal(t, "PT7S", m.MediaPresentationDuration)
	require.Len(t, m.Periods, 2)
	require.Equal(t, []string{"PT0S", "PT4S"}, []string{m.Periods[0].Start, m.Periods[1].Start})
	require.Equal(t, []string{"PT4S", "PT3S"}, []string{m.Periods[0].Duration, m.Periods[1].Duration})
	second := m.Periods[1].AdaptationSets[0].Representations[0].SegmentList
	require.Equal(t, uint64(10*90000), second.PresentationTimeOffset)
	require.Equal(t, "720p/init-9-0.mp4", second.Initialization.SourceURL)
	require.Equal(t, []sXML{{T: 900000, D: 180000}, {T: 1080000, D: 90000}}, second.SegmentTimeline.S)
	require.Equal(t, []segmentURLX{{"720p/9-1.m4s"}, {"720p/9-2.m4s"}}, second.SegmentURLs)
	// The audio's short last segment of the first run stays in its Period.
	firstAudio := m.Periods[0].AdaptationSets[1].Representations[0].SegmentList
	require.Len(t, firstAudio.SegmentURLs, 3)
	require.Equal(t, uint32(48000), firstAudio.Timescale)
}

func TestRelative(t *testing.T) {
	require.Equal(t, "5-1.m4s", relative(prefix+"720p/", prefix+"720p/5-1.m4s"))
	require.Equal(t, "720p/5-1.m4s", relative(prefix, prefix+"720p/5-1.m4s"))
	require.Equal(t, "../audio/init-5-0.mp4", relative(prefix+"720p/", prefix+"audio/init-5-0.mp4"))
}

func TestLostSeconds(t *testing.T) {
	require.Zero(t, lostSeconds(nil))
	require.Equal(t, 4.5, lostSeconds([]job.LostSegment{
		{Rendition: "720p", Number: 3, DurationS: 2},
		{Rendition: "audio", Number: 3, DurationS: 2},
		{Rendition: "720p", Number: 7, DurationS: 2.5},
	}))
}

func TestFrameRate(t *testing.T) {
	for in, want := range map[string]float64{"30": 30, "30000/1001": 29.97002997002997, "": 0, "x": 0, "30/0": 0, "-5": 0, "NaN": 0, "25/NaN": 0} {
		require.Equal(t, want, frameRate(in), in)
	}
}

// A segment only the video lost is a discontinuity in the audio too.
func TestBlocksAlign(t *testing.T) {
	v := &track{name: "720p", desc: video, segs: []*segment{
		seg("720p", 5, 0, 1, 0, 2, 1), seg("720p", 5, 0, 3, 4, 2, 1), seg("720p", 7, 0, 1, 10, 2, 1)}}
	au := &track{name: "audio", audio: true, desc: audio, segs: []*segment{
		seg("audio", 5, 0, 1, 0, 2, 1), seg("audio", 5, 0, 2, 2, 2, 1), seg("audio", 5, 0, 3, 4, 2, 1), seg("audio", 7, 0, 1, 10, 2, 1)}}
	for _, tr := range []*track{v, au} {
		arrange(tr)
	}
	alignBlocks([]*track{v, au})
	disc := func(tr *track) (out []bool) {
		for _, s := range tr.segs {
			out = append(out, s.disc)
		}
		return out
	}
	require.Equal(t, []bool{true, true, true}, disc(v))
	require.Equal(t, []bool{true, false, true, true}, disc(au))
}
