package origin

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
)

// Changes tells the origin when a stream's playlists change, so a blocking
// playlist reload (LL-HLS _HLS_msn/_HLS_part) or a request for a part that
// is still being made is answered the moment it can be.
type Changes interface {
	// Changed returns a channel that is closed at the stream's next change.
	Changed(streamID string) <-chan struct{}
}

// Broadcast is the Changes a worker feeds from its packagers' publish hook:
// every waiter of a stream waits on one channel, closed and replaced at
// each Notify.
type Broadcast struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

// NewBroadcast returns an empty Broadcast.
func NewBroadcast() *Broadcast { return &Broadcast{chans: map[string]chan struct{}{}} }

// Changed implements Changes.
func (b *Broadcast) Changed(streamID string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.chans[streamID]
	if !ok {
		ch = make(chan struct{})
		b.chans[streamID] = ch
	}
	return ch
}

// Notify wakes everyone waiting on streamID.
func (b *Broadcast) Notify(streamID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.chans[streamID]; ok {
		close(ch)
		delete(b.chans, streamID)
	}
}

// Query parameters of LL-HLS playlist requests (RFC 8216bis §6.2.5).
const (
	queryMSN  = "_HLS_msn"
	queryPart = "_HLS_part"
	querySkip = "_HLS_skip"
)

// SkipPlaylistName is the delta-update playlist the packager writes beside
// a rendition's media playlist, served for _HLS_skip=YES.
const SkipPlaylistName = "index.skip.m3u8"

// advancePartLimit is how many parts past the last one a blocking request
// may ask for before it is refused (RFC 8216bis: "Advance Part Limit", 3).
const advancePartLimit = 3

// llState is what a media playlist says about its live edge.
type llState struct {
	target      time.Duration // EXT-X-TARGETDURATION
	partTarget  time.Duration // EXT-X-PART-INF PART-TARGET; 0 without parts
	lastMSN     int64         // media sequence number of the last complete segment; -1 without any
	openParts   int           // parts listed after the last complete segment (of segment lastMSN+1)
	openNumber  string        // file number of the open segment, from its parts or the preload hint
	hint        string        // EXT-X-PRELOAD-HINT URI
	ended       bool          // EXT-X-ENDLIST
	lowLatency  bool          // EXT-X-SERVER-CONTROL with CAN-BLOCK-RELOAD=YES
	hasSkipFile bool
}

// parsePlaylist reads the live edge of an LL-HLS (or standard) media
// playlist.
func parsePlaylist(data []byte) llState {
	st := llState{lastMSN: -1, target: 2 * time.Second}
	var seq int64
	var segs int64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.ParseInt(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			if v, err := strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:")); err == nil && v > 0 {
				st.target = time.Duration(v) * time.Second
			}
		case strings.HasPrefix(line, "#EXT-X-PART-INF:"):
			if v, ok := attr(line, "PART-TARGET"); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
					st.partTarget = time.Duration(f * float64(time.Second))
				}
			}
		case strings.HasPrefix(line, "#EXT-X-SERVER-CONTROL:"):
			v, _ := attr(line, "CAN-BLOCK-RELOAD")
			st.lowLatency = v == "YES"
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			st.openParts++
			if u, ok := attr(line, "URI"); ok {
				st.openNumber = partNumber(u)
			}
		case strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:"):
			if u, ok := attr(line, "URI"); ok {
				st.hint = u
				if st.openNumber == "" {
					st.openNumber = partNumber(u)
				}
			}
		case line == "#EXT-X-ENDLIST":
			st.ended = true
		case strings.HasPrefix(line, "#"):
		default: // a segment URI: its parts listed before it are complete
			segs++
			st.openParts = 0
			st.openNumber = ""
		}
	}
	st.lastMSN = seq + segs - 1
	return st
}

// attr returns the value of a tag attribute (quotes removed).
func attr(line, name string) (string, bool) {
	_, list, ok := strings.Cut(line, ":")
	if !ok {
		return "", false
	}
	for list != "" {
		var kv string
		if i := strings.IndexByte(list, '='); i >= 0 && i+1 < len(list) && list[i+1] == '"' {
			end := strings.IndexByte(list[i+2:], '"')
			if end < 0 {
				return "", false
			}
			kv, list = list[:i+2+end+1], strings.TrimPrefix(list[i+2+end+1:], ",")
		} else {
			kv, list, _ = strings.Cut(list, ",")
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}

// partNumber is the segment number of a part file name "{number}.{part}.m4s".
func partNumber(uri string) string {
	n, rest, ok := strings.Cut(path.Base(uri), ".")
	if !ok || !strings.HasSuffix(rest, ".m4s") || !strings.Contains(rest, ".") {
		return ""
	}
	return n
}

// blockingRequest is the LL-HLS part of a media playlist request.
type blockingRequest struct {
	msn  int64 // -1: not blocking
	part int   // -1: the whole segment
	skip bool
}

func parseBlocking(q url.Values) (blockingRequest, error) {
	br := blockingRequest{msn: -1, part: -1}
	switch v := q.Get(querySkip); v {
	case "":
	case "YES", "v2":
		br.skip = true
	default:
		return br, fmt.Errorf("%s must be YES or v2, not %q", querySkip, v)
	}
	if v := q.Get(queryMSN); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return br, fmt.Errorf("%s must be a media sequence number, not %q", queryMSN, v)
		}
		br.msn = n
	}
	if v := q.Get(queryPart); v != "" {
		if br.msn < 0 {
			return br, fmt.Errorf("%s needs %s", queryPart, queryMSN)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return br, fmt.Errorf("%s must be a part index, not %q", queryPart, v)
		}
		br.part = n
	}
	return br, nil
}

// ready reports whether st contains what br waits for.
func (br blockingRequest) ready(st llState) bool {
	switch {
	case br.msn < 0, st.ended, br.msn <= st.lastMSN:
		return true
	case br.msn == st.lastMSN+1 && br.part >= 0:
		return br.part < st.openParts
	}
	return false
}

// tooFar reports a request for a segment or part so far ahead of the live
// edge that the server must not hold it (RFC 8216bis §6.2.5.2).
func (br blockingRequest) tooFar(st llState) bool {
	if br.msn > st.lastMSN+2 {
		return true
	}
	if br.part < 0 || st.partTarget <= 0 {
		return false
	}
	perSegment := max(1, int(math.Round(float64(st.target)/float64(st.partTarget))))
	ahead := (br.msn-st.lastMSN-1)*int64(perSegment) + int64(br.part) - int64(st.openParts-1)
	return ahead > advancePartLimit+int64(perSegment)
}

// mediaPlaylist answers a media playlist request that carries LL-HLS
// query parameters: it is held until the requested segment or part is in
// the playlist (at most three target durations, then 503), refused at once
// when it asks too far ahead (400), and answered with the delta update
// for _HLS_skip.
func (h *handler) mediaPlaylist(w http.ResponseWriter, r *http.Request, p playback.Path) {
	br, err := parseBlocking(r.URL.Query())
	if err != nil {
		h.problem(w, http.StatusBadRequest, OutcomeBadQuery, err.Error())
		return
	}
	dir := filepath.Join(h.cfg.DataDir, p.StreamID)
	var (
		data    []byte
		st      llState
		answer  func() // set when the request is answered other than with the playlist
		checked bool
	)
	ok := h.waitFor(r.Context(), p.StreamID, func() (bool, time.Duration) {
		if checked && !h.cfg.Holds(p.StreamID) {
			answer = func() {
				w.Header().Set(NotHeldHeader, NotHeldValue)
				h.problem(w, http.StatusNotFound, OutcomeNotHeld, "stream is not served by this origin")
			}
			return true, 0
		}
		checked = true
		var err error
		if data, err = readFile(dir, p.File); err != nil {
			answer = func() { h.problem(w, http.StatusNotFound, OutcomeNotFound, "no such file") }
			return true, 0
		}
		st = parsePlaylist(data)
		if !st.lowLatency {
			br.msn, br.part = -1, -1 // a standard playlist: the parameters mean nothing
		}
		if br.msn >= 0 && br.tooFar(st) {
			answer = func() {
				h.problem(w, http.StatusBadRequest, OutcomeBadQuery, fmt.Sprintf(
					"%s=%d %s=%d is too far ahead of the playlist's last segment %d", queryMSN, br.msn, queryPart, br.part, st.lastMSN))
			}
			return true, 0
		}
		return br.ready(st), 3 * st.target
	})
	switch {
	case r.Context().Err() != nil:
	case answer != nil:
		answer()
	case ok:
		h.servePlaylist(w, r, dir, p.File, data, br, st)
	default:
		w.Header().Set("Retry-After", "1")
		h.problem(w, http.StatusServiceUnavailable, OutcomeTimeout, fmt.Sprintf(
			"%s=%d %s=%d did not appear within three target durations", queryMSN, br.msn, queryPart, br.part))
	}
}

// waitFor calls poll until it reports done, again after each change of the
// stream (without Changes, once), for at most the timeout its first call
// gave. It returns false when that time passed or ctx ended first.
func (h *handler) waitFor(ctx context.Context, streamID string, poll func() (done bool, timeout time.Duration)) bool {
	var deadline <-chan time.Time
	for {
		var changed <-chan struct{}
		if h.cfg.Changes != nil {
			changed = h.cfg.Changes.Changed(streamID) // before polling: no change is missed
		}
		done, timeout := poll()
		if done {
			return true
		}
		if changed == nil {
			return true // nobody would wake us: answer with what there is
		}
		if deadline == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (h *handler) servePlaylist(w http.ResponseWriter, r *http.Request, dir, file string, data []byte, br blockingRequest, st llState) {
	if br.skip {
		skip := path.Join(path.Dir(file), SkipPlaylistName)
		if d, err := readFile(dir, skip); err == nil {
			data = d
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/vnd.apple.mpegurl")
	if br.msn >= 0 {
		// The answer to a blocking request names its segment and part, so a
		// CDN may keep it (LL-HLS: caching blocking responses lets one
		// upstream request serve every viewer waiting for the same part).
		hd.Set("Cache-Control", "public, max-age="+strconv.Itoa(max(1, int(6*st.target/time.Second))))
	} else {
		hd.Set("Cache-Control", "public, max-age="+strconv.Itoa(h.llMaxAge(st)))
	}
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	h.requests.WithLabelValues(OutcomeServed).Inc()
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

// llMaxAge is how long a non-blocking low-latency playlist may be cached:
// less than a part.
func (h *handler) llMaxAge(st llState) int {
	if st.lowLatency {
		return 0
	}
	return h.playlistMaxAge
}

// hasLLQuery reports whether a playlist request carries LL-HLS parameters.
func hasLLQuery(q url.Values) bool {
	return q.Has(queryMSN) || q.Has(queryPart) || q.Has(querySkip)
}

// awaitPart holds a request for a part (or segment) of a low-latency stream
// that is still being made, the preload hint's among them, until the file
// is complete, for at most three target durations. It returns false when
// the file is not one the playlist says is coming (a plain 404).
func (h *handler) awaitPart(ctx context.Context, streamID, file string) bool {
	if h.cfg.Changes == nil || path.Ext(file) != ".m4s" {
		return false
	}
	dir := filepath.Join(h.cfg.DataDir, streamID)
	there := false
	ok := h.waitFor(ctx, streamID, func() (bool, time.Duration) {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(file))); err == nil {
			there = true
			return true, 0
		}
		data, err := readFile(dir, path.Join(path.Dir(file), "index.m3u8"))
		if err != nil {
			return true, 0
		}
		st := parsePlaylist(data)
		if !st.lowLatency || st.ended || !coming(st, path.Base(file)) {
			return true, 0 // not coming: a plain 404
		}
		return false, 3 * st.target
	})
	return ok && there
}

// coming reports whether name is the preload hint, a part or the whole of
// the open segment, or a part of the segment after it (players ask one part
// ahead).
func coming(st llState, name string) bool {
	if name == path.Base(st.hint) {
		return true
	}
	if st.openNumber == "" {
		return false
	}
	open, err := strconv.ParseUint(st.openNumber, 10, 64)
	if err != nil {
		return false
	}
	n, _, _ := strings.Cut(name, ".")
	num, err := strconv.ParseUint(n, 10, 64)
	if err != nil {
		return false
	}
	return num == open || (num == open+1 && partNumber(name) != "")
}

// readFile reads a file inside dir through os.Root (see open).
func readFile(dir, file string) ([]byte, error) {
	f, _, err := open(dir, file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// StreamingHeader marks an answer that is streamed while its file is being
// made (a low-latency segment): a router passes it through as it comes and
// does not store it.
const StreamingHeader = "X-Dionysia-Streaming"

// streamSegment answers a request for the low-latency segment still being
// made (LL-DASH players ask for it as soon as its first part is out, per
// the MPD's availabilityTimeOffset) by sending its parts as they are
// written, then the rest of the completed segment: the bytes are the
// segment's own. It returns false when file is not that segment.
func (h *handler) streamSegment(w http.ResponseWriter, r *http.Request, p playback.Path, ctype string) bool {
	if h.cfg.Changes == nil || path.Ext(p.File) != ".m4s" || partNumber(p.File) != "" {
		return false
	}
	dir := filepath.Join(h.cfg.DataDir, p.StreamID)
	rdir := path.Dir(p.File)
	data, err := readFile(dir, path.Join(rdir, "index.m3u8"))
	if err != nil {
		return false
	}
	st := parsePlaylist(data)
	number := strings.TrimSuffix(path.Base(p.File), ".m4s")
	if !st.lowLatency || st.ended || st.openNumber != number {
		return false
	}
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Cache-Control", immutable) // the bytes are the finished segment's
	hd.Set(StreamingHeader, "1")
	h.requests.WithLabelValues(OutcomeServed).Inc()
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return true
	}
	rc := http.NewResponseController(w)
	deadline := time.NewTimer(3*st.target + st.partTarget)
	defer deadline.Stop()
	var sent int64
	for part := 0; ; {
		changed := h.cfg.Changes.Changed(p.StreamID)
		if whole, err := readFile(dir, p.File); err == nil {
			// Complete: the rest of it (the parts are its bytes, in order).
			if sent < int64(len(whole)) {
				_, _ = w.Write(whole[sent:])
			}
			return true
		}
		if b, err := readFile(dir, path.Join(rdir, number+"."+strconv.Itoa(part)+".m4s")); err == nil {
			if _, err := w.Write(b); err != nil {
				return true
			}
			_ = rc.Flush()
			sent += int64(len(b))
			part++
			continue
		}
		select {
		case <-changed:
		case <-deadline.C:
			// The segment never completed (the pipeline stopped): cut the
			// answer short so nobody keeps a truncated copy.
			panic(http.ErrAbortHandler)
		case <-r.Context().Done():
			return true
		}
	}
}
