package pipeline

import (
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-gst/go-glib/glib"
	"github.com/go-gst/go-gst/gst"

	"github.com/dionysia/dionysia/pkg/job"
)

// AuthURL returns the URL the pipeline pulls from, with the edge read
// credential of src added the way mediamtx expects it:
//
//   - rtmp://host/live/KEY  → rtmp://host/live/KEY?user=U&pass=P (query on the
//     stream name; other query parameters are kept)
//   - srt://host:port?streamid=read:live/KEY → streamid read:live/KEY:U:P
//     (mediamtx's "action:path:user:pass" form)
//   - rtsp://host/live/KEY → rtsp://U:P@host/live/KEY (the source element
//     sends it as Basic authentication; it is never in the location)
//   - file:///path (tests and benchmarks): returned unchanged; a credential
//     is an error.
//
// Without a User the URL is returned unchanged. The result holds secrets:
// never log it (log src, whose String redacts).
func AuthURL(src job.Source) (string, error) {
	u, err := url.Parse(src.URL)
	if err != nil {
		return "", fmt.Errorf("parsing source url %s: %w", src, err)
	}
	switch u.Scheme {
	case "rtmp", "rtmps":
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return "", fmt.Errorf("source url %s: rtmp needs a host and a stream path", src)
		}
		if src.User == "" {
			return src.URL, nil
		}
		q := u.Query()
		q.Set("user", src.User)
		q.Set("pass", src.Password)
		u.RawQuery = q.Encode()
		return u.String(), nil
	case "srt":
		if u.Host == "" {
			return "", fmt.Errorf("source url %s: srt needs a host and port", src)
		}
		q := u.Query()
		sid := q.Get("streamid")
		if sid == "" {
			// srt://host:port/live/KEY is accepted too: the path becomes the
			// stream id.
			p := strings.Trim(u.Path, "/")
			if p == "" {
				return "", fmt.Errorf("source url %s: srt needs a streamid=read:live/<key> parameter", src)
			}
			sid = "read:" + p
			u.Path = ""
		}
		if src.User != "" {
			if strings.Count(sid, ":") > 1 {
				return "", fmt.Errorf("source url %s: streamid already holds a credential", src)
			}
			sid += ":" + src.User + ":" + src.Password
		}
		q.Set("streamid", sid)
		u.RawQuery = q.Encode()
		return u.String(), nil
	case "rtsp":
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return "", fmt.Errorf("source url %s: rtsp needs a host and a stream path", src)
		}
		if u.User != nil {
			return "", fmt.Errorf("source url %s: url already holds a credential", src)
		}
		if src.User != "" {
			u.User = url.UserPassword(src.User, src.Password)
		}
		return u.String(), nil
	case "file":
		if src.User != "" {
			return "", fmt.Errorf("source url %s: a file source takes no credential", src)
		}
		if u.Path == "" {
			return "", fmt.Errorf("source url %s: file url needs a path", src)
		}
		return src.URL, nil
	default:
		return "", fmt.Errorf("source url %s: %w %q (want rtmp, srt, rtsp or file)", src, ErrUnsupportedScheme, u.Scheme)
	}
}

// redactor removes the authenticated URL and the credential from texts
// (GStreamer error messages quote the URL they were given).
type redactor struct {
	url string // authenticated
	src job.Source
}

func (r redactor) redact(s string) string {
	s = strings.ReplaceAll(s, r.url, r.src.String())
	if raw := r.src.URL; raw != "" {
		s = strings.ReplaceAll(s, raw, r.src.String())
	}
	if pw := r.src.Password; pw != "" {
		s = strings.ReplaceAll(s, url.UserPassword(r.src.User, pw).String(), "<redacted>")
		s = strings.ReplaceAll(s, pw, "<redacted>")
	}
	return s
}

// source is the head of the pipeline: the element that reads the stream
// (rtmp2src, srtsrc, rtspsrc, filesrc) and its demuxer, whose pads it routes: the
// first H.264/H.265 stream to the video decode, the first audio stream to
// the audio branch, everything else to a fakesink. It knows when every
// stream of the source has been seen, and fails a source without usable
// video.
type source struct {
	log        *slog.Logger
	graph      *graph
	url        string // authenticated: never log
	src        job.Source
	srtLatency time.Duration
	live       bool // rtmp or srt: video may start long after audio
	video      *videoDecode
	audio      *audioBranch
	gate       *trackGate
	failure    *failure
	health     *healthMeter

	mu          sync.Mutex
	demux       *gst.Element
	signals     []glib.SignalHandle
	exposeAll   bool // the demuxer exposes every stream before data flows (parsebin)
	rtsp        rtspStreams
	noMorePads  bool
	unsupported string // caps of a video stream no decoder handles
}

// build creates the source element and its demuxer.
func (s *source) build() error {
	src, demuxer, err := s.makeElement()
	if err != nil {
		return err
	}
	if demuxer == "" {
		return s.buildRTSP(src)
	}
	demux, err := s.graph.make(demuxer, "demux")
	if err != nil {
		return err
	}
	if err := src.Link(demux); err != nil {
		return fmt.Errorf("linking source to %s: %w", demuxer, err)
	}
	if demuxer == "flvdemux" {
		holdAudioUntilVideo(demux.GetStaticPad("sink"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exposeAll = demuxer == "parsebin"
	s.demux = demux
	h1, err := demux.Connect("pad-added", func(_ *gst.Element, pad *gst.Pad) { s.onPadAdded(pad) })
	if err != nil {
		return fmt.Errorf("connecting pad-added: %w", err)
	}
	h2, err := demux.Connect("no-more-pads", func(_ *gst.Element) { s.onNoMorePads() })
	if err != nil {
		return fmt.Errorf("connecting no-more-pads: %w", err)
	}
	s.signals = []glib.SignalHandle{h1, h2}
	return nil
}

// release disconnects the demuxer's signals and drops the references.
func (s *source) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.demux != nil {
		for _, h := range s.signals {
			s.demux.HandlerDisconnect(h)
		}
	}
	for _, b := range s.rtsp.bins {
		b.e.HandlerDisconnect(b.h)
	}
	s.demux, s.signals, s.rtsp.bins = nil, nil, nil
}

// makeElement creates the source element and names the demuxer to put
// after it: flvdemux for RTMP and tsdemux for SRT, which emit no-more-pads
// once every stream is known; parsebin for files, which finds the container;
// none for RTSP, whose rtspsrc adds a pad per RTP stream itself (rtsp.go).
func (s *source) makeElement() (*gst.Element, string, error) {
	u, err := url.Parse(s.url)
	if err != nil {
		return nil, "", fmt.Errorf("parsing source url %s: %w", s.src, err)
	}
	switch u.Scheme {
	case "rtmp", "rtmps":
		// Set the parts rather than "location" so the query (the mediamtx
		// credential) stays on the stream name.
		path := strings.Trim(u.Path, "/")
		i := strings.LastIndex(path, "/")
		app, stream := "", path
		if i >= 0 {
			app, stream = path[:i], path[i+1:]
		}
		if u.RawQuery != "" {
			stream += "?" + u.RawQuery
		}
		port := u.Port()
		if port == "" {
			port = "1935"
		}
		e, err := s.graph.make("rtmp2src", "source",
			prop{"scheme", u.Scheme}, prop{"host", u.Hostname()}, prop{"port", port},
			prop{"application", app}, prop{"stream", stream}, prop{"timeout", "5"})
		return e, "flvdemux", err
	case "srt":
		q := u.Query()
		sid := q.Get("streamid")
		q.Del("streamid")
		u.RawQuery = q.Encode()
		e, err := s.graph.make("srtsrc", "source",
			prop{"uri", u.String()}, prop{"streamid", sid}, prop{"mode", "caller"},
			prop{"latency", strconv.Itoa(int(s.srtLatency / time.Millisecond))},
			prop{"auto-reconnect", "false"}, prop{"wait-for-connection", "false"})
		return e, "tsdemux", err
	case "rtsp":
		user, pass := "", ""
		if u.User != nil {
			user = u.User.Username()
			pass, _ = u.User.Password()
			u.User = nil
		}
		// TCP interleaved (the edge's RTSP listener takes no UDP). The
		// jitter buffer only reorders: over TCP nothing arrives out of order.
		e, err := s.graph.make("rtspsrc", "source",
			prop{"location", u.String()}, prop{"user-id", user}, prop{"user-pw", pass},
			prop{"protocols", "tcp"}, prop{"latency", "200"}, prop{"tcp-timeout", "5000000"})
		return e, "", err
	case "file":
		e, err := s.graph.make("filesrc", "source", prop{"location", u.Path})
		return e, "parsebin", err
	default:
		return nil, "", fmt.Errorf("%w %q", ErrUnsupportedScheme, u.Scheme)
	}
}

func (s *source) onPadAdded(pad *gst.Pad) {
	caps := pad.GetCurrentCaps()
	if caps == nil {
		caps = pad.QueryCaps(nil)
	}
	if caps == nil || caps.GetSize() == 0 {
		s.graph.drop(pad)
		return
	}
	name := caps.GetStructureAt(0).Name()
	capsStr := caps.String()
	s.mu.Lock()
	exposeAll := s.exposeAll
	s.mu.Unlock()
	// parsebin exposes all of a source's streams at once, then lets data
	// flow, and (unlike flvdemux and tsdemux) emits no no-more-pads: the
	// first buffer or EOS on any exposed pad means every stream is known.
	if exposeAll {
		s.addExposedProbe(pad)
	}
	if s.graph.isClosed() {
		return
	}
	var err error
	switch {
	case name == "video/x-h264" || name == "video/x-h265":
		err = s.video.attach(pad, name)
	case strings.HasPrefix(name, "video/") || strings.HasPrefix(name, "image/"):
		s.log.Warn("unsupported video stream", "caps", name)
		s.mu.Lock()
		if s.unsupported == "" {
			s.unsupported = name
		}
		s.mu.Unlock()
		s.graph.drop(pad)
	case strings.HasPrefix(name, "audio/"):
		s.health.watchAudio(pad)
		s.audio.attach(pad, name, capsStr)
	default:
		s.graph.drop(pad)
	}
	if err != nil {
		s.failure.fail(err)
		return
	}
	s.gate.maybeOpen()
}

func (s *source) addExposedProbe(pad *gst.Pad) {
	pad.AddProbe(gst.PadProbeTypeBuffer|gst.PadProbeTypeEventDownstream, func(_ *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		if info.Type()&gst.PadProbeTypeBuffer == 0 {
			if ev := info.GetEvent(); ev == nil || ev.Type() != gst.EventTypeEOS {
				return gst.PadProbeOK
			}
		}
		s.onNoMorePads()
		return gst.PadProbeRemove
	})
}

// allSeen reports whether every stream of the source is known.
func (s *source) allSeen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noMorePads
}

// unsupportedVideo returns the caps of a video stream no decoder handles
// ("" for none).
func (s *source) unsupportedVideo() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsupported
}

// onNoMorePads runs once every stream of the source is known: it opens the
// gate or fails a source without usable video.
func (s *source) onNoMorePads() {
	s.mu.Lock()
	if s.noMorePads {
		s.mu.Unlock()
		return
	}
	s.noMorePads = true
	unsupported := s.unsupported
	s.mu.Unlock()
	switch {
	case s.video.isBuilt():
		s.gate.maybeOpen()
	case unsupported != "":
		s.failure.fail(fmt.Errorf("%w %s (H.264 and H.265 are supported)", ErrUnsupportedCodec, unsupported))
	case s.audio.err() != "":
		// The audio failed before any video was seen: that is the news, not
		// the missing video.
		s.failure.fail(fmt.Errorf("%w: audio: %s", ErrBadStream, s.audio.err()))
	case s.live:
		// A live source sends video from a keyframe on: with a long
		// keyframe interval the demuxer gives up waiting for video (flvdemux
		// after 6 s of audio) before it arrives, and adds its pad when it
		// does. The start timeout decides.
		s.log.Info("no video yet: waiting for the source's first keyframe")
	default:
		s.failure.fail(ErrNoVideo)
	}
}

var (
	reFramerate = regexp.MustCompile(`framerate=\(fraction\)(\d+)/(\d+)`)
	reWidth     = regexp.MustCompile(`width=\(int\)(\d+)`)
	reHeight    = regexp.MustCompile(`height=\(int\)(\d+)`)
	reMPEGVer   = regexp.MustCompile(`mpegversion=\(int\)(\d+)`)
)

func capsInt(re *regexp.Regexp, caps string) int {
	m := re.FindStringSubmatch(caps)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// finite reports whether src has an end of its own (a file), as opposed to a
// live pull.
func finite(src job.Source) bool { return strings.HasPrefix(src.URL, "file:") }

// FLV tag types (the first byte of a tag) and the header's video flag.
const (
	flvTagAudio    = 8
	flvTagVideo    = 9
	flvHeaderVideo = 0x01
	flvTagHeader   = 11 // bytes before a tag's data
)

// holdAudioUntilVideo drops the FLV audio tags in front of flvdemux, after
// the first one, until the first video frame, when the FLV header
// announces video. The edge sends a new reader video from the next
// keyframe on, audio at once; flvdemux gives up on video after 6 s of audio
// alone (it signals no-more-pads, then ignores the video tags that follow),
// so a source with a keyframe interval over 6 s would have no video. The
// first audio tag (AAC's decoder configuration) passes so that flvdemux
// creates the audio pad before the video's (it takes the streams it has
// when the video comes as all there are). Audio before the first picture
// plays nowhere anyway. rtmp2src outputs the header (with the metadata),
// then one tag per buffer; only a tag's first bytes are read.
func holdAudioUntilVideo(pad *gst.Pad) {
	first, audioSeen := true, false
	pad.AddProbe(gst.PadProbeTypeBuffer, func(pad *gst.Pad, info *gst.PadProbeInfo) gst.PadProbeReturn {
		buf := info.GetBuffer()
		if buf == nil || buf.GetSize() < 5 {
			return gst.PadProbeOK
		}
		head := buf.Extract(0, min(buf.GetSize(), flvTagHeader+2))
		if first {
			first = false
			if string(head[:3]) == "FLV" {
				if head[4]&flvHeaderVideo == 0 {
					return gst.PadProbeRemove // audio only: nothing to wait for
				}
				return gst.PadProbeOK
			}
		}
		switch head[0] & 0x1f {
		case flvTagAudio:
			if !audioSeen {
				audioSeen = true
				return gst.PadProbeOK
			}
			return gst.PadProbeDrop
		case flvTagVideo:
			if flvVideoFrame(head) {
				return gst.PadProbeRemove
			}
		}
		return gst.PadProbeOK
	})
}

// flvVideoFrame reports whether a video tag (its first 13 bytes) holds a
// frame rather than a decoder configuration (an AVC/HEVC sequence header,
// legacy or enhanced RTMP).
func flvVideoFrame(head []byte) bool {
	if len(head) < flvTagHeader+2 {
		return false
	}
	b := head[flvTagHeader]
	if b&0x80 != 0 { // enhanced RTMP: the low nibble is the packet type
		pt := b & 0x0f
		return pt == 1 || pt == 3 // CodedFrames, CodedFramesX
	}
	switch b & 0x0f { // codec id
	case 7, 12: // AVC, HEVC: AVCPacketType 1 is a frame, 0 the sequence header
		return head[flvTagHeader+1] == 1
	}
	return true
}
