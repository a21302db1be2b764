package packager

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dionysia/dionysia/workers/internal/media"
)

// File names inside Config.Dir.
const (
	MultivariantName  = "index.m3u8"
	MediaPlaylistName = "index.m3u8" // inside each rendition's directory
	ManifestName      = "manifest.mpd"
	AudioName         = "audio" // directory and DASH Representation id of the audio track
)

// Errors returned by the Sink methods.
var (
	ErrClosed      = errors.New("packager closed")
	ErrNoTracks    = errors.New("tracks not set")
	ErrBadTrack    = errors.New("unknown video track")
	ErrInvalidName = errors.New("invalid rendition name")
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// maxLead bounds how much media one track may buffer while it waits for a
// boundary decided by another track (or for a keyframe), in target durations.
const maxLead = 10

// Packager writes the CMAF segments, HLS playlists and DASH MPD of one stream.
// It implements media.Sink; all methods are safe for concurrent use. Disk
// writes happen on the calling goroutine while it holds the packager's lock.
type Packager struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	closed     bool
	ended      bool
	cur        *run
	runs       int // runs started so far
	ast        time.Time
	haveNumber bool
	nextNumber uint64 // number of the next segment of a new run
	held       bool   // Resume: no playlist is written until Release
	histRuns   int    // runs of the History given to Resume
	minNumber  uint64 // above any segment found on disk at start
	mediaEnd   time.Duration
	rends      map[string]*rendition
	order      []string // rendition names in first-seen order
	periods    []*period
	lastMaster []byte
	dirs       map[string]bool
	files      []File     // completed since the lock was taken, for OnFile
	notifyMu   sync.Mutex // orders OnFile calls; taken before mu is released
}

var _ media.Sink = (*Packager)(nil)

// New validates cfg, creates the stream directory and returns a packager that
// waits for Tracks.
func New(cfg Config) (*Packager, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validating packager config: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating stream directory: %w", err)
	}
	p := &Packager{
		cfg:   cfg,
		log:   cfg.Logger,
		rends: make(map[string]*rendition),
		dirs:  make(map[string]bool),
	}
	p.minNumber = highestSegmentOnDisk(cfg.Dir) + 1
	return p, nil
}

// highestSegmentOnDisk returns the highest segment number left in dir by an
// earlier packager of the same stream (a worker that failed over), or 0.
func highestSegmentOnDisk(dir string) uint64 {
	matches, _ := filepath.Glob(filepath.Join(dir, "*", "*.m4s"))
	var highest uint64
	for _, m := range matches {
		n, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(m), ".m4s"), 10, 64)
		if err == nil && n > highest {
			highest = n
		}
	}
	return highest
}

// period is one pipeline run as the DASH MPD sees it.
type period struct {
	index  int
	offset time.Duration // start, relative to availabilityStartTime
	video  []*rendition
	audio  *rendition
}

// run is one pipeline run: the tracks given to one Tracks call and the segment
// boundaries their samples were cut at.
type run struct {
	index       int
	video       []*trackRun
	audio       *trackRun
	bounds      []time.Duration // pipeline PTS of segment starts; bounds[0] starts the run
	origin      time.Duration   // pipeline time that maps to offset
	offset      time.Duration   // media time of origin, relative to availabilityStartTime
	startNumber uint64
	period      *period
}

// mediaTime maps a pipeline timestamp of this run to the session timeline.
func (r *run) mediaTime(ts time.Duration) time.Duration { return r.offset + ts - r.origin }

// segmentAt returns the index of the boundary a sample at pts starts or falls
// into: the last boundary b with b-tol <= pts, or -1 before the first.
func (r *run) segmentAt(pts, tol time.Duration) int {
	for i := len(r.bounds) - 1; i >= 0; i-- { // boundaries increase; recent ones match first
		if pts >= r.bounds[i]-tol {
			return i
		}
	}
	return -1
}

// trackRun is one track's state within a run.
type trackRun struct {
	rend     *rendition
	isAudio  bool
	seg      int // index of the open segment; -1 until the track started
	pending  []sample
	delay    time.Duration // video: PTS-DTS of the first keyframe, so decode time 0 presents at 0
	tol      time.Duration // boundary tolerance: half a frame
	frameDur time.Duration // nominal sample duration
	haveLast bool
	lastTS   time.Duration // last accepted DTS (video) or PTS (audio)
	lastTick int64         // last decode time written, in track ticks
	nextTick int64         // audio: expected decode time of the next frame, -1 unknown
	sps, pps [][]byte
	params   videoParams
	init     []byte // CMAF header of this run, nil until known
	initName string
	// described properties for manifests
	video media.VideoTrack
	audio media.AudioTrack
	codec string
}

type sample struct {
	dts, pts, dur time.Duration
	key           bool
	data          []byte
}

// Tracks starts a pipeline run. The first call sets up the session; a later
// call means the pipeline restarted: the current run's partial segments are
// flushed and the next segments start a discontinuity (HLS) and a new Period
// (DASH).
func (p *Packager) Tracks(video []media.VideoTrack, audio *media.AudioTrack) error {
	if len(video) == 0 && audio == nil {
		return errors.New("setting tracks: no video and no audio")
	}
	seen := map[string]bool{}
	for _, v := range video {
		if !nameRE.MatchString(v.Name) || v.Name == AudioName {
			return fmt.Errorf("setting tracks: %w: %q", ErrInvalidName, v.Name)
		}
		if seen[v.Name] {
			return fmt.Errorf("setting tracks: %w: duplicate %q", ErrInvalidName, v.Name)
		}
		seen[v.Name] = true
	}
	var audioCodec string
	var audioHeader []byte
	if audio != nil {
		if audio.SampleRate <= 0 || audio.SampleRate > 384000 {
			return fmt.Errorf("setting tracks: audio sample rate %d", audio.SampleRate)
		}
		codec, ch, err := aacCodec(audio.Config)
		if err != nil {
			return fmt.Errorf("setting tracks: %w", err)
		}
		audioCodec = codec
		if audio.Channels <= 0 {
			a := *audio
			a.Channels = max(ch, 1)
			audio = &a
		}
		if audioHeader, err = audioInit(audio.Config, audio.SampleRate, audio.Channels); err != nil {
			return fmt.Errorf("setting tracks: %w", err)
		}
	}

	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return ErrClosed
	}
	var errs []error
	if p.cur != nil {
		errs = append(errs, p.finishRun())
	}
	r := &run{index: p.runs}
	p.runs++
	for _, v := range video {
		tr := &trackRun{rend: p.rendition(v.Name, false, videoTimescale), seg: -1, video: v, lastTick: -1}
		tr.frameDur = time.Second / 30
		if v.FrameRateNum > 0 && v.FrameRateDen > 0 {
			tr.frameDur = time.Duration(int64(time.Second) * int64(v.FrameRateDen) / int64(v.FrameRateNum))
		}
		tr.tol = min(max(tr.frameDur/2, time.Millisecond), 50*time.Millisecond)
		r.video = append(r.video, tr)
	}
	if audio != nil {
		tr := &trackRun{rend: p.rendition(AudioName, true, uint32(audio.SampleRate)), seg: -1, isAudio: true, audio: *audio, codec: audioCodec, nextTick: -1, lastTick: -1}
		tr.frameDur = time.Duration(int64(time.Second) * 1024 / int64(audio.SampleRate))
		tr.tol = tr.frameDur / 2
		tr.init = audioHeader
		r.audio = tr
	}
	// Renditions missing from this run will get no more segments: end their playlists.
	for _, name := range p.order {
		rd := p.rends[name]
		if !rd.ended && !seen[name] && !(name == AudioName && audio != nil) {
			rd.ended = true
			errs = append(errs, p.writeMediaPlaylist(rd))
		}
	}
	for _, tr := range r.tracks() {
		tr.rend.ended = false
	}
	p.cur = r
	return errors.Join(errs...)
}

func (r *run) tracks() []*trackRun {
	trs := append([]*trackRun(nil), r.video...)
	if r.audio != nil {
		trs = append(trs, r.audio)
	}
	return trs
}

func (p *Packager) rendition(name string, audio bool, timescale uint32) *rendition {
	rd, ok := p.rends[name]
	if !ok {
		rd = &rendition{name: name, audio: audio, lastRun: -1}
		p.rends[name] = rd
		p.order = append(p.order, name)
	}
	rd.timescale = timescale
	return rd
}

// WriteVideo packages one access unit of video track track (an index into the
// slice given to Tracks). Malformed or out-of-order units are dropped with a
// logged reason and counted in Stats; errors are returned for calls the
// packager cannot serve (closed, no tracks, bad index) and for disk failures.
func (p *Packager) WriteVideo(track int, au media.VideoAU) error {
	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return ErrClosed
	}
	if p.cur == nil {
		return ErrNoTracks
	}
	if track < 0 || track >= len(p.cur.video) {
		return fmt.Errorf("%w: %d", ErrBadTrack, track)
	}
	return p.writeVideo(p.cur.video[track], au)
}

func (p *Packager) writeVideo(tr *trackRun, au media.VideoAU) error {
	r := p.cur
	if tr.haveLast && au.DTS <= tr.lastTS {
		p.drop(tr, "non-monotonic DTS", "dts", au.DTS, "last", tr.lastTS)
		return nil
	}
	if au.PTS < au.DTS {
		p.drop(tr, "PTS before DTS", "pts", au.PTS, "dts", au.DTS)
		return nil
	}
	parsed, err := parseAnnexB(au.Data)
	if err != nil {
		p.drop(tr, err.Error())
		return nil
	}
	key := au.Keyframe || parsed.idr
	if len(parsed.sps) > 0 && len(parsed.pps) > 0 {
		if tr.init == nil {
			if !p.setVideoInit(tr, parsed) {
				return nil
			}
		} else if !sameNALUs(parsed.sps, tr.sps) || !sameNALUs(parsed.pps, tr.pps) {
			// The CMAF header cannot change within a run: keep the new
			// parameter sets in-band so decoders still get them.
			p.warnOnce(tr, "parameter sets changed within a run; keeping them in-band")
			parsed.sample = prependNALUs(parsed.sample, parsed.sps, parsed.pps)
		}
	}
	s := sample{dts: au.DTS, pts: au.PTS, dur: au.Duration, key: key, data: parsed.sample}

	if tr.seg < 0 {
		if !key {
			p.drop(tr, "waiting for the first keyframe")
			return nil
		}
		if tr.init == nil {
			p.drop(tr, "keyframe without SPS/PPS before the track started")
			return nil
		}
		if len(r.bounds) == 0 {
			p.beginRun(au.PTS)
		}
		k := r.segmentAt(au.PTS, tr.tol)
		if k < 0 {
			p.drop(tr, "keyframe before the run's first segment boundary", "pts", au.PTS, "boundary", r.bounds[0])
			return nil
		}
		var errCut error
		if k == len(r.bounds)-1 && au.PTS >= r.bounds[k]+p.cfg.SegmentDuration-tr.tol {
			r.bounds = append(r.bounds, au.PTS)
			k++
			errCut = p.advanceAudio()
		} else {
			p.checkAlignment(tr, k, au.PTS)
		}
		tr.seg = k
		tr.delay = au.PTS - au.DTS
		p.accept(tr, s)
		return errCut
	}

	if len(tr.pending) >= p.maxPending(tr) && !key {
		p.drop(tr, "no keyframe for too long", "buffered", len(tr.pending))
		return nil
	}
	var errs []error
	if key {
		next := tr.seg + 1
		switch {
		case next < len(r.bounds):
			if au.PTS >= r.bounds[next]-tr.tol {
				k := r.segmentAt(au.PTS, tr.tol)
				if k > next {
					p.log.Warn("rendition skipped segment boundaries (keyframes not aligned)",
						"rendition", tr.rend.name, "from", next, "to", k)
				}
				p.checkAlignment(tr, k, au.PTS)
				errs = append(errs, p.cut(tr, tr.pending, au.DTS, true))
				tr.pending, tr.seg = nil, k
			}
		case au.PTS >= r.bounds[tr.seg]+p.cfg.SegmentDuration-tr.tol:
			r.bounds = append(r.bounds, au.PTS)
			errs = append(errs, p.cut(tr, tr.pending, au.DTS, true))
			tr.pending, tr.seg = nil, next
			errs = append(errs, p.advanceAudio())
		}
	}
	p.accept(tr, s)
	return errors.Join(errs...)
}

func (p *Packager) accept(tr *trackRun, s sample) {
	tr.pending = append(tr.pending, s)
	tr.haveLast = true
	if tr.isAudio {
		tr.lastTS = s.pts
	} else {
		tr.lastTS = s.dts
	}
}

func (p *Packager) maxPending(tr *trackRun) int {
	return int(maxLead*p.cfg.SegmentDuration/max(tr.frameDur, time.Millisecond)) + 1
}

func (p *Packager) checkAlignment(tr *trackRun, k int, pts time.Duration) {
	if k < 0 || k >= len(p.cur.bounds) {
		return
	}
	if d := pts - p.cur.bounds[k]; d > tr.tol || d < -tr.tol {
		p.log.Warn("keyframe not aligned with the segment boundary",
			"rendition", tr.rend.name, "segment", p.cur.startNumber+uint64(k), "offset", d)
	}
}

func (p *Packager) setVideoInit(tr *trackRun, au accessUnit) bool {
	params, err := parseSPS(au.sps[0])
	if err != nil {
		p.drop(tr, err.Error())
		return false
	}
	init, err := videoInit(params, au.sps, au.pps)
	if err != nil {
		p.drop(tr, err.Error())
		return false
	}
	tr.sps, tr.pps, tr.params, tr.init, tr.codec = au.sps, au.pps, params, init, params.codec
	return true
}

// beginRun fixes the run's timeline when its first boundary (the first
// keyframe seen, or the first audio frame of an audio-only stream) is known.
func (p *Packager) beginRun(origin time.Duration) {
	r := p.cur
	now := p.cfg.Clock()
	if p.ast.IsZero() {
		p.ast = now.Truncate(time.Millisecond)
		r.offset = 0
	} else {
		// A short outage is closed up: the new run continues where the last
		// one ended, so players never land in a gap (dash.js stalls when its
		// start position falls between two Periods). After a longer one the
		// run starts on the wall clock and the gap stays, so the timeline never
		// lags the clock by more than one segment duration.
		r.offset = p.mediaEnd
		if wall := now.Sub(p.ast).Round(time.Millisecond); wall-r.offset > p.cfg.SegmentDuration {
			r.offset = wall
		}
	}
	r.origin = origin
	r.bounds = []time.Duration{origin}
	if p.haveNumber {
		r.startNumber = p.nextNumber
	} else {
		r.startNumber = max(uint64(now.UnixNano()/int64(p.cfg.SegmentDuration)), p.minNumber)
		p.haveNumber = true
	}
	p.nextNumber = r.startNumber
	per := &period{index: r.index, offset: r.offset}
	for _, tr := range r.video {
		per.video = append(per.video, tr.rend)
	}
	if r.audio != nil {
		per.audio = r.audio.rend
	}
	r.period = per
	p.periods = append(p.periods, per)
}

// WriteAudio packages one raw AAC frame.
func (p *Packager) WriteAudio(f media.AudioFrame) error {
	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return ErrClosed
	}
	if p.cur == nil {
		return ErrNoTracks
	}
	tr := p.cur.audio
	if tr == nil {
		return errors.New("writing audio: the run has no audio track")
	}
	if len(f.Data) == 0 {
		p.drop(tr, "empty audio frame")
		return nil
	}
	if tr.haveLast && f.PTS <= tr.lastTS {
		p.drop(tr, "non-monotonic audio PTS", "pts", f.PTS, "last", tr.lastTS)
		return nil
	}
	if len(tr.pending) >= p.maxPending(tr) {
		tr.pending = tr.pending[1:]
		p.drop(tr, "audio buffered too far ahead of video")
	}
	p.accept(tr, sample{dts: f.PTS, pts: f.PTS, dur: f.Duration, key: true, data: bytes.Clone(f.Data)})
	return p.advanceAudio()
}

// advanceAudio cuts the audio track at every boundary it has frames beyond.
// Without video, audio decides the boundaries itself.
func (p *Packager) advanceAudio() error {
	r := p.cur
	tr := r.audio
	if tr == nil || len(tr.pending) == 0 {
		return nil
	}
	if len(r.video) == 0 {
		if len(r.bounds) == 0 {
			p.beginRun(tr.pending[0].pts)
		}
		if tr.seg < 0 {
			tr.seg = 0
		}
		for _, s := range tr.pending {
			last := r.bounds[len(r.bounds)-1]
			if s.pts > last && s.pts >= last+p.cfg.SegmentDuration-tr.tol {
				r.bounds = append(r.bounds, s.pts)
			}
		}
	}
	if len(r.bounds) == 0 {
		return nil
	}
	if tr.seg < 0 {
		i := 0
		for i < len(tr.pending) && tr.pending[i].pts < r.bounds[0] {
			i++
		}
		tr.pending = tr.pending[i:]
		if len(tr.pending) == 0 {
			return nil
		}
		tr.seg = r.segmentAt(tr.pending[0].pts, 0)
	}
	var errs []error
	for tr.seg+1 < len(r.bounds) {
		b := r.bounds[tr.seg+1]
		i := 0
		for i < len(tr.pending) && tr.pending[i].pts < b {
			i++
		}
		if i == len(tr.pending) {
			break // the frame that closes the segment has not arrived yet
		}
		if i > 0 {
			errs = append(errs, p.cut(tr, tr.pending[:i], tr.pending[i].pts, true))
			tr.pending = append([]sample(nil), tr.pending[i:]...)
		}
		tr.seg++
	}
	return errors.Join(errs...)
}

// finishRun flushes every track's open segment at the end of a run.
func (p *Packager) finishRun() error {
	r := p.cur
	if r == nil || len(r.bounds) == 0 {
		return nil
	}
	var errs []error
	errs = append(errs, p.advanceAudio())
	for _, tr := range r.tracks() {
		if tr.seg >= 0 && len(tr.pending) > 0 {
			errs = append(errs, p.cut(tr, tr.pending, 0, false))
		}
		tr.pending = nil
	}
	return errors.Join(errs...)
}

// Close flushes the open segments and rewrites the playlists. ended=true means
// the stream is over: the HLS playlists get EXT-X-ENDLIST and the MPD becomes
// static with a mediaPresentationDuration. A packager that ends without ever
// having had tracks ends the HLS playlists an earlier packager of the stream
// left in its directory instead (its players are watching those). Later calls
// return ErrClosed.
func (p *Packager) Close(ended bool) error {
	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return nil
	}
	if ended && len(p.order) == 0 {
		p.closed, p.ended = true, true
		return endEarlierPlaylists(p.cfg.Dir)
	}
	err := errors.Join(p.finishRun(), p.release())
	p.closed = true
	p.ended = ended
	errs := []error{err}
	for _, name := range p.order {
		rd := p.rends[name]
		if ended {
			rd.ended = true
		}
		errs = append(errs, p.writeMediaPlaylist(rd))
	}
	errs = append(errs, p.writeMultivariant(), p.writeMPD())
	return errors.Join(errs...)
}

func (p *Packager) drop(tr *trackRun, reason string, args ...any) {
	tr.rend.dropped++
	if tr.rend.warned == nil {
		tr.rend.warned = map[string]bool{}
	}
	if tr.rend.warned[reason] {
		return
	}
	tr.rend.warned[reason] = true
	p.log.Warn("dropping sample (logged once per reason and track)",
		append([]any{"rendition", tr.rend.name, "reason", reason}, args...)...)
}

func (p *Packager) warnOnce(tr *trackRun, msg string) {
	if tr.rend.warned == nil {
		tr.rend.warned = map[string]bool{}
	}
	if !tr.rend.warned[msg] {
		tr.rend.warned[msg] = true
		p.log.Warn(msg, "rendition", tr.rend.name)
	}
}

func sameNALUs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func prependNALUs(sample []byte, sets ...[][]byte) []byte {
	var out []byte
	for _, set := range sets {
		for _, n := range set {
			out = append(out, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			out = append(out, n...)
		}
	}
	return append(out, sample...)
}
