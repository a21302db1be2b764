package vod

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// audioGroup is the GROUP-ID of the audio renditions in the multivariant
// playlist.
const audioGroup = "audio"

// mediaPlaylist is the HLS VOD media playlist (RFC 8216) of one track,
// written in dir (its URIs are relative to it). Each contiguous block starts
// with its EXT-X-MAP (when the init changes) and EXT-X-PROGRAM-DATE-TIME,
// every block after the first with EXT-X-DISCONTINUITY.
func mediaPlaylist(t *track, dir string) string {
	var target float64
	for _, s := range t.segs {
		target = max(target, math.Round(s.DurationS*1000)/1000)
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", int(math.Ceil(target)))
	b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	init := ""
	for i, s := range t.segs {
		if s.disc {
			if i > 0 {
				b.WriteString("#EXT-X-DISCONTINUITY\n")
			}
			if s.Init != init {
				fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", relative(dir, s.Init))
				init = s.Init
			}
			if !s.Start.IsZero() {
				fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", programDateTime(s.Start))
			}
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", s.DurationS, relative(dir, s.Key))
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String()
}

// multivariant is the HLS multivariant playlist: one EXT-X-STREAM-INF per
// video rendition (with the audio group), or the audio alone when there is
// no video. BANDWIDTH is the measured peak segment bit rate of the video
// plus the audio's, AVERAGE-BANDWIDTH the measured mean of both.
func multivariant(a *asset) string {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	var audio *track
	if len(a.audio) > 0 {
		audio = a.audio[0]
	}
	if len(a.video) == 0 {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=%q\n%s/%s\n",
			audio.bandwidth(), audio.averageBandwidth(), audio.desc.Codec, audio.name, PlaylistName)
		return b.String()
	}
	for i, t := range a.audio {
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=%q,NAME=%q,DEFAULT=%s,AUTOSELECT=YES", audioGroup, t.name, yesNo(i == 0))
		if t.desc.Channels > 0 {
			fmt.Fprintf(&b, ",CHANNELS=\"%d\"", t.desc.Channels)
		}
		fmt.Fprintf(&b, ",URI=\"%s/%s\"\n", t.name, PlaylistName)
	}
	for _, t := range a.video {
		bw, avg, codecs := t.bandwidth(), t.averageBandwidth(), t.desc.Codec
		if audio != nil {
			bw += audio.bandwidth()
			avg += audio.averageBandwidth()
			codecs += "," + audio.desc.Codec
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=%q", bw, avg, codecs)
		if t.desc.Width > 0 && t.desc.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", t.desc.Width, t.desc.Height)
		}
		if fps := frameRate(t.desc.FrameRate); fps > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", fps)
		}
		if audio != nil {
			fmt.Fprintf(&b, ",AUDIO=%q", audioGroup)
		}
		fmt.Fprintf(&b, "\n%s/%s\n", t.name, PlaylistName)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// frameRate parses "30" or "30000/1001"; 0 when absent or invalid.
func frameRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) || math.IsInf(n, 0) {
		return 0
	}
	if !ok {
		return n
	}
	d, err := strconv.ParseFloat(den, 64)
	if err != nil || !(d > 0) || math.IsInf(d, 0) {
		return 0
	}
	return n / d
}

// programDateTime is the wall clock of a time, as HLS and DASH write it.
func programDateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
