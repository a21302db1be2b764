package edge

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/dionysia/dionysia/services/internal/edge/mediamtx"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
)

const (
	maxQueuedEvents = 1000                   // events kept while the API is unreachable
	fastPoll        = 250 * time.Millisecond // poll interval right after a publish was accepted
	fastPollFor     = 5 * time.Second
	rekickAfter     = 5 * time.Second // a kicked publisher still live after this is kicked again
	noteTTL         = 30 * time.Second
	allowanceTTL    = time.Minute
	bitrateSamples  = 6 // bitrate window: the last 6 polls
)

// liveStream is one stream live on the edge.
type liveStream struct {
	path       string
	streamID   string
	sourceType string
	sourceID   string
	protocol   string
	since      time.Time
	inbound    uint64
	media      edgeapi.Media
	samples    []sample
}

type sample struct {
	at    time.Time
	bytes uint64
}

// label is the stream's metric label: its ID, else a hash of the path.
func (s *liveStream) label() string {
	if s.streamID != "" {
		return s.streamID
	}
	return edgeapi.StreamRef(s.path)
}

func (s *liveStream) toAPI() edgeapi.LiveStream {
	return edgeapi.LiveStream{
		StreamID:     s.streamID,
		Path:         s.path,
		SourceType:   s.sourceType,
		SourceID:     s.sourceID,
		Protocol:     s.protocol,
		Since:        s.since,
		InboundBytes: s.inbound,
		Media:        s.media,
	}
}

// observe records a poll of the stream's path and updates its bitrate.
func (s *liveStream) observe(p mediamtx.Path, now time.Time) {
	s.inbound = p.InboundBytes
	s.samples = append(s.samples, sample{at: now, bytes: p.InboundBytes})
	if len(s.samples) > bitrateSamples {
		s.samples = s.samples[len(s.samples)-bitrateSamples:]
	}
	if first, last := s.samples[0], s.samples[len(s.samples)-1]; last.bytes >= first.bytes {
		if dt := last.at.Sub(first.at).Seconds(); dt > 0 {
			s.media.BitrateKbps = int(float64(last.bytes-first.bytes) * 8 / dt / 1000)
		}
	}
}

// closeNote is how mediamtx said a publishing connection closed.
type closeNote struct {
	reason string
	at     time.Time
}

// pendingEnd is a stream that left mediamtx, waiting briefly for the log line
// that says why.
type pendingEnd struct {
	s   *liveStream
	due time.Time
}

type kickCall struct {
	kicks []edgeapi.Kick
	reply chan<- int
}

// tracker is the state of the tracking loop; only its goroutine (and finish,
// after it) touches it.
type tracker struct {
	gen       int // supervisor generation the live set belongs to
	queue     []edgeapi.Event
	seq       int64 // last Seq assigned
	sentSeq   int64 // last Seq the API accepted
	needSync  bool
	lastSync  time.Time
	pending   []pendingEnd
	kicked    map[string]kickNote // source ID → why and when we kicked it
	fastUntil time.Time
	pollFails int
}

type kickNote struct {
	reason string
	at     time.Time
}

// track polls mediamtx, reports changes and syncs with the API until ctx is
// cancelled.
func (e *Edge) track(ctx context.Context) {
	tr := &e.tr
	tr.needSync = true
	tr.kicked = map[string]kickNote{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.nudge:
			tr.fastUntil = time.Now().Add(fastPollFor)
		case kc := <-e.kicks:
			kc.reply <- e.applyKicks(ctx, kc.kicks)
			continue
		case <-timer.C:
		}
		e.step(ctx)
		interval := e.cfg.PollInterval
		if time.Now().Before(tr.fastUntil) {
			interval = min(interval, fastPoll)
		}
		timer.Reset(interval)
	}
}

// step is one round: poll, diff, report, sync.
func (e *Edge) step(ctx context.Context) {
	tr := &e.tr
	now := time.Now()
	st := e.sup.State()
	if tr.gen != 0 && (!st.Running || st.Generation != tr.gen) {
		// The child that held the live set is gone: so are its publishers.
		e.endAll(edgeapi.EndEdgeRestarted, "mediamtx "+cmp.Or(st.LastExit, "restarted"), now)
		e.mu.Lock()
		clear(e.connPaths)
		clear(e.closed)
		e.mu.Unlock()
		tr.gen = 0
		tr.needSync = true
	}
	if st.Running {
		pctx, cancel := context.WithTimeout(ctx, max(e.cfg.PollInterval, 2*time.Second))
		paths, err := e.mtx.Paths(pctx)
		cancel()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			tr.pollFails++
			if tr.pollFails == 3 {
				e.log.Warn("mediamtx api not answering", "err", err)
			}
			e.metrics.childUp.Set(0)
		case e.sup.State().Generation == st.Generation:
			if tr.gen != st.Generation {
				e.log.Info("mediamtx ready", "generation", st.Generation, "pid", st.PID)
				tr.gen = st.Generation
				tr.needSync = true
			}
			tr.pollFails = 0
			e.diff(paths, now)
			e.mu.Lock()
			e.lastPollOK = now
			e.pollGen = st.Generation
			e.mu.Unlock()
			e.metrics.childUp.Set(1)
		}
	} else {
		e.metrics.childUp.Set(0)
	}
	e.processPending(now, false)
	e.flush(ctx)
	if tr.needSync || now.Sub(tr.lastSync) >= e.cfg.SyncInterval {
		e.sync(ctx, tr.gen != 0)
	}
}

// diff turns a path list into ready / not_ready events.
func (e *Edge) diff(paths []mediamtx.Path, now time.Time) {
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		if !p.Available || p.Source == nil {
			continue
		}
		if _, ok := edgeapi.StreamKey(p.Name); !ok {
			continue // never allowed by auth; nothing to report
		}
		seen[p.Name] = true
		e.mu.Lock()
		cur := e.live[p.Name]
		e.mu.Unlock()
		if cur != nil && cur.sourceID == p.Source.ID {
			cur.observe(p, now)
			e.metrics.bitrate.WithLabelValues(cur.label()).Set(float64(cur.media.BitrateKbps) * 1000)
			continue
		}
		if cur != nil {
			e.endStream(cur, "", "", now) // another publisher took the path between two polls
		}
		s := &liveStream{
			path:       p.Name,
			sourceType: p.Source.Type,
			sourceID:   p.Source.ID,
			protocol:   mediamtx.Protocol(p.Source.Type),
			since:      now,
			media:      mediaOf(p.Tracks),
		}
		if p.AvailableTime != nil {
			s.since = *p.AvailableTime
		}
		s.observe(p, now)
		e.mu.Lock()
		if a, ok := e.allowed[s.sourceID]; ok {
			s.streamID = a.streamID
			delete(e.allowed, s.sourceID)
		}
		e.live[s.path] = s
		e.mu.Unlock()
		e.metrics.bitrate.WithLabelValues(s.label()).Set(0)
		media := s.media
		e.enqueue(edgeapi.Event{Type: edgeapi.EventReady, Media: &media}, s, now)
	}
	e.mu.Lock()
	var gone []*liveStream
	for path, s := range e.live {
		if !seen[path] {
			gone = append(gone, s)
		}
	}
	for id, a := range e.allowed {
		if now.Sub(a.at) > allowanceTTL {
			delete(e.allowed, id)
		}
	}
	for path, n := range e.closed {
		if now.Sub(n.at) > noteTTL {
			delete(e.closed, path)
		}
	}
	e.mu.Unlock()
	for _, s := range gone {
		e.endStream(s, "", "", now)
	}
	e.updateLiveGauge()
}

// endStream removes s from the live set and reports it ended. Without a
// reason, the reason comes from a kick we did or from mediamtx's close line
// (waited for briefly in processPending).
func (e *Edge) endStream(s *liveStream, reason, detail string, now time.Time) {
	tr := &e.tr
	e.mu.Lock()
	if e.live[s.path] == s {
		delete(e.live, s.path)
	}
	e.mu.Unlock()
	e.metrics.bitrate.DeleteLabelValues(s.label())
	e.updateLiveGauge()
	if k, ok := tr.kicked[s.sourceID]; ok {
		delete(tr.kicked, s.sourceID)
		if reason == "" || reason == edgeapi.EndEdgeRestarted {
			reason, detail = edgeapi.EndKicked, k.reason
		}
	}
	if reason != "" {
		e.enqueueEnd(s, reason, detail, now)
		return
	}
	tr.pending = append(tr.pending, pendingEnd{s: s, due: now.Add(min(e.cfg.PollInterval, time.Second))})
}

// processPending reports the pending ends whose close line arrived, or whose
// wait is over (all of them when flushAll).
func (e *Edge) processPending(now time.Time, flushAll bool) {
	tr := &e.tr
	kept := tr.pending[:0]
	for _, p := range tr.pending {
		e.mu.Lock()
		n, ok := e.closed[p.s.path]
		if ok && !n.at.Before(p.s.since) {
			delete(e.closed, p.s.path)
		} else {
			ok = false
		}
		e.mu.Unlock()
		switch {
		case ok:
			e.enqueueEnd(p.s, classifyClose(n.reason, p.s.protocol), mediamtx.Redact(n.reason), now)
		case flushAll || !now.Before(p.due):
			e.enqueueEnd(p.s, edgeapi.EndPublisherDisconnected, "", now)
		default:
			kept = append(kept, p)
		}
	}
	clear(tr.pending[len(kept):])
	tr.pending = kept
}

// classifyClose maps mediamtx's close reason for a publisher of protocol
// to an End* reason. "terminated" is mediamtx closing the connection itself
// (kicks are known before the close line arrives): for a WebRTC session it
// is also what a clean WHIP DELETE gives, the publisher leaving.
func classifyClose(reason, protocol string) string {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "timeout"), strings.Contains(r, "deadline"), strings.Contains(r, "timed out"):
		return edgeapi.EndPublisherTimeout
	case r == "terminated" && protocol == edgeapi.ProtocolWebRTC:
		return edgeapi.EndPublisherDisconnected // WHIP DELETE
	case r == "terminated":
		return edgeapi.EndError // closed by mediamtx, not by us
	default:
		return edgeapi.EndPublisherDisconnected // EOF, connection reset, closed by peer, ...
	}
}

func (e *Edge) endAll(reason, detail string, now time.Time) {
	e.mu.Lock()
	all := make([]*liveStream, 0, len(e.live))
	for _, s := range e.live {
		all = append(all, s)
	}
	e.mu.Unlock()
	slices.SortFunc(all, func(a, b *liveStream) int { return a.since.Compare(b.since) })
	for _, s := range all {
		e.endStream(s, reason, detail, now)
	}
}

func (e *Edge) enqueueEnd(s *liveStream, reason, detail string, now time.Time) {
	media := s.media
	e.enqueue(edgeapi.Event{Type: edgeapi.EventNotReady, Reason: reason, Detail: detail, Media: &media}, s, now)
}

// enqueue completes ev from s and queues it for the API.
func (e *Edge) enqueue(ev edgeapi.Event, s *liveStream, now time.Time) {
	tr := &e.tr
	tr.seq++
	ev.EdgeID = e.cfg.ID
	ev.BootID = e.bootID
	ev.Seq = tr.seq
	ev.StreamID = s.streamID
	ev.Path = s.path
	ev.SourceType = s.sourceType
	ev.SourceID = s.sourceID
	ev.Protocol = s.protocol
	ev.Since = s.since
	ev.Time = now
	ev.Edge = e.edgeInfo()
	if ev.Type == edgeapi.EventReady {
		e.log.Info("stream live", "event", ev, "video", ev.Media.VideoCodec, "width", ev.Media.Width,
			"height", ev.Media.Height, "audio", ev.Media.AudioCodec)
	} else {
		e.log.Info("stream ended", "event", ev, "detail", ev.Detail)
	}
	tr.queue = append(tr.queue, ev)
	if len(tr.queue) > maxQueuedEvents {
		e.log.Error("API unreachable for too long, dropping the oldest event (the next sync corrects the API)",
			"dropped", tr.queue[0])
		tr.queue = tr.queue[1:]
	}
}

// flush sends queued events in order, stopping at the first failure.
func (e *Edge) flush(ctx context.Context) {
	tr := &e.tr
	for len(tr.queue) > 0 {
		cctx, cancel := context.WithTimeout(ctx, e.cfg.APITimeout)
		err := e.api.Event(cctx, tr.queue[0])
		cancel()
		switch {
		case err == nil:
			tr.sentSeq = tr.queue[0].Seq
		case errors.Is(err, edgeapi.ErrRejected):
			e.log.Error("API rejected an event, dropping it", "event", tr.queue[0], "err", err)
		default:
			e.setAPIOK(false, err)
			return
		}
		e.setAPIOK(true, nil)
		tr.queue[0] = edgeapi.Event{}
		tr.queue = tr.queue[1:]
	}
}

// sync sends the live set, unless events are still queued (a sync must never
// overtake an event), and applies the kicks in the answer.
func (e *Edge) sync(ctx context.Context, ready bool) {
	tr := &e.tr
	if len(tr.queue) > 0 {
		return
	}
	now := time.Now()
	req := edgeapi.SyncRequest{
		EdgeID: e.cfg.ID,
		BootID: e.bootID,
		Seq:    tr.sentSeq,
		Ready:  ready,
		Time:   now,
		Live:   e.liveList(),
		Edge:   e.edgeInfo(),
	}
	cctx, cancel := context.WithTimeout(ctx, e.cfg.APITimeout)
	res, err := e.api.Sync(cctx, req)
	cancel()
	tr.lastSync = now
	if err != nil {
		e.setAPIOK(false, err)
		return
	}
	e.setAPIOK(true, nil)
	tr.needSync = false
	if len(res.Kick) > 0 {
		e.applyKicks(ctx, res.Kick)
	}
}

func (e *Edge) liveList() []edgeapi.LiveStream {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]edgeapi.LiveStream, 0, len(e.live))
	for _, s := range e.live {
		out = append(out, s.toAPI())
	}
	slices.SortFunc(out, func(a, b edgeapi.LiveStream) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// applyKicks disconnects the live publishers the kicks match and returns how
// many it disconnected.
func (e *Edge) applyKicks(ctx context.Context, kicks []edgeapi.Kick) int {
	tr := &e.tr
	now := time.Now()
	n := 0
	for _, k := range kicks {
		for _, s := range e.matchKick(k) {
			if prev, ok := tr.kicked[s.sourceID]; ok && now.Sub(prev.at) < rekickAfter {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := e.mtx.Kick(cctx, s.sourceType, s.sourceID)
			cancel()
			if errors.Is(err, mediamtx.ErrNotFound) {
				continue // already gone; the next poll reports it
			}
			if err != nil {
				e.log.Warn("kicking publisher", "stream_id", s.streamID, "source_id", s.sourceID, "err", err)
				continue
			}
			tr.kicked[s.sourceID] = kickNote{reason: cmp.Or(k.Reason, edgeapi.EndKicked), at: now}
			e.log.Info("publisher kicked", "stream_id", s.streamID, "source_id", s.sourceID,
				"stream_ref", edgeapi.StreamRef(s.path), "reason", k.Reason)
			n++
		}
	}
	if n > 0 {
		tr.fastUntil = now.Add(fastPollFor)
	}
	return n
}

func (e *Edge) matchKick(k edgeapi.Kick) []*liveStream {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*liveStream
	for _, s := range e.live {
		switch {
		case k.SourceID != "":
			if s.sourceID == k.SourceID {
				out = append(out, s)
			}
		case k.StreamID != "":
			if s.streamID == k.StreamID {
				out = append(out, s)
			}
		case k.Path != "":
			if s.path == k.Path {
				out = append(out, s)
			}
		}
	}
	return out
}

// finish runs after the child stopped: every stream ends with edge_shutdown,
// the events are flushed and a last sync says nothing is live.
func (e *Edge) finish() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*e.cfg.APITimeout+2*time.Second)
	defer cancel()
	now := time.Now()
	e.processPending(now, true)
	e.endAll(edgeapi.EndEdgeShutdown, "", now)
	e.flush(ctx)
	e.sync(ctx, false)
	e.metrics.childUp.Set(0)
}

func (e *Edge) setAPIOK(ok bool, err error) {
	e.mu.Lock()
	was := e.apiOK
	e.apiOK = ok
	e.mu.Unlock()
	switch {
	case ok && !was:
		e.log.Info("API reachable", "api_url", e.cfg.APIURL)
	case !ok && was:
		e.log.Warn("API unreachable, retrying", "api_url", e.cfg.APIURL, "err", err)
	}
}

func (e *Edge) isLive(path string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.live[path]
	return ok
}

func (e *Edge) updateLiveGauge() {
	e.mu.Lock()
	n := len(e.live)
	e.mu.Unlock()
	e.metrics.live.Set(float64(n))
}

// nudgeTracker asks for fast polling (a publisher was just accepted).
func (e *Edge) nudgeTracker() {
	select {
	case e.nudge <- struct{}{}:
	default:
	}
}

// onLogLine remembers which connection publishes which path and how it
// closed, so an end can carry mediamtx's reason. Called by the log readers.
func (e *Edge) onLogLine(l mediamtx.Line) {
	if conn, path, ok := mediamtx.Publishing(l.Message); ok {
		e.mu.Lock()
		e.connPaths[conn] = path
		e.mu.Unlock()
		return
	}
	if conn, reason, ok := mediamtx.Closed(l.Message); ok {
		e.mu.Lock()
		if path, ok := e.connPaths[conn]; ok {
			delete(e.connPaths, conn)
			e.closed[path] = closeNote{reason: reason, at: time.Now()}
		}
		e.mu.Unlock()
	}
}

var videoCodecs = map[string]bool{
	"H264": true, "H265": true, "AV1": true, "VP9": true, "VP8": true,
	"MPEG-4 Video": true, "MPEG-1/2 Video": true, "M-JPEG": true,
}

// mediaOf summarizes mediamtx's tracks.
func mediaOf(tracks []mediamtx.Track) edgeapi.Media {
	var m edgeapi.Media
	for _, t := range tracks {
		m.Tracks = append(m.Tracks, t.Codec)
		switch {
		case videoCodecs[t.Codec]:
			if m.VideoCodec == "" {
				m.VideoCodec = t.Codec
				m.Width, m.Height = t.Props.Width, t.Props.Height
				m.VideoProfile, m.VideoLevel = t.Props.ProfileString(), t.Props.LevelString()
			}
		case t.Codec == "KLV" || t.Codec == "Generic" || t.Codec == "MPEG-TS":
		default:
			if m.AudioCodec == "" {
				m.AudioCodec = t.Codec
				m.AudioRate, m.AudioChannels = t.Props.SampleRate, t.Props.ChannelCount
			}
		}
	}
	return m
}
