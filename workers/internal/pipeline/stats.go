package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RenditionStats are the counters of one rendition of a running pipeline.
type RenditionStats struct {
	Name      string
	FramesIn  uint64 // decoded frames that reached the rendition
	FramesOut uint64 // encoded access units handed to the sink
	// Dropped counts frames videorate discarded: the frame-rate reduction
	// (half the input for 60→30 fps) plus any surplus the source sent.
	Dropped uint64
	// Duplicated counts frames videorate repeated to fill gaps in the source:
	// frames the source (or the edge, for a slow reader) lost.
	Duplicated uint64
	// EncodeFPS is the encoder's output rate over the last second.
	EncodeFPS float64
	// RealtimeFactor is media time encoded divided by wall time since the
	// first output: ≈1 for a live source that keeps up, <1 when the worker
	// falls behind, >1 for a file read faster than real time.
	RealtimeFactor float64
}

// Stats is a snapshot of a pipeline.
type Stats struct {
	StreamID       string
	Renditions     []RenditionStats
	AudioFramesOut uint64
	Skipped        []string // renditions not encoded, with the reason
}

// runStats is what the run as a whole counts: when the last encoded video
// frame came out (the supervision loop's stall detection) and, once the run
// is over, its final snapshot. The per-rendition counters live in each
// renditionBranch, the audio's in the audioBranch.
type runStats struct {
	lastOut atomic.Int64 // wall time (UnixNano) of the last video AU, 0: none yet

	mu    sync.Mutex
	final *Stats
}

func (s *runStats) videoOut(now time.Time) { s.lastOut.Store(now.UnixNano()) }

// lastVideo returns when the last video AU came out (zero: none yet).
func (s *runStats) lastVideo() time.Time {
	if n := s.lastOut.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (s *runStats) finish(st Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.final = &st
}

func (s *runStats) finished() (Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.final == nil {
		return Stats{}, false
	}
	return *s.final, true
}

// Stats returns a snapshot of the pipeline's counters. After Run returned it
// returns the final values.
func (p *Pipeline) Stats() Stats {
	if st, ok := p.stats.finished(); ok {
		return st
	}
	st := Stats{StreamID: p.cfg.StreamID, AudioFramesOut: p.audio.framesOut()}
	st.Renditions, st.Skipped = p.renditions.snapshot(time.Now())
	return st
}

// rate measures events per second over a sliding one-second window.
type rate struct {
	mu          sync.Mutex
	windowStart time.Time
	count       int
	last        float64
	firstPTS    time.Duration
	lastPTS     time.Duration
	first       time.Time
	seen        bool
}

func (r *rate) add(now time.Time, pts, dur time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen {
		r.seen, r.first, r.windowStart, r.firstPTS = true, now, now, pts
	}
	if end := pts + dur; end > r.lastPTS {
		r.lastPTS = end
	}
	r.count++
	if el := now.Sub(r.windowStart); el >= time.Second {
		r.last = float64(r.count) / el.Seconds()
		r.windowStart, r.count = now, 0
	}
}

func (r *rate) snapshot(now time.Time) (fps, rtf float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen {
		return 0, 0
	}
	fps = r.last
	if now.Sub(r.windowStart) > 2*time.Second {
		fps = 0 // stalled: nothing for two windows
	}
	if wall := now.Sub(r.first); wall > 0 {
		rtf = (r.lastPTS - r.firstPTS).Seconds() / wall.Seconds()
	}
	return fps, rtf
}

// Metrics exports the stats of every running pipeline to Prometheus, labelled
// by stream_id and rendition. Create one per process and pass it in each
// Config; pipelines add themselves while they run and disappear when Run
// returns, so finished streams leave no series behind. Counters restart at 0
// with each pipeline run (Prometheus' rate() handles resets).
type Metrics struct {
	mu    sync.Mutex
	live  map[*Pipeline]struct{}
	descs struct {
		in, out, dropped, dup, fps, rtf, audio *prometheus.Desc
		health                                 healthDescs
	}
}

// NewMetrics creates the collector and registers it on reg (nil: not
// registered; Collect can still be called directly).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{live: map[*Pipeline]struct{}{}}
	l := []string{"stream_id", "rendition"}
	m.descs.in = prometheus.NewDesc("dionysia_worker_frames_in_total", "Decoded frames that reached the rendition.", l, nil)
	m.descs.out = prometheus.NewDesc("dionysia_worker_frames_out_total", "Encoded frames handed to the packager.", l, nil)
	m.descs.dropped = prometheus.NewDesc("dionysia_worker_frames_dropped_total", "Frames dropped by frame-rate conversion or source surplus.", l, nil)
	m.descs.dup = prometheus.NewDesc("dionysia_worker_frames_duplicated_total", "Frames repeated to fill gaps in the source.", l, nil)
	m.descs.fps = prometheus.NewDesc("dionysia_worker_encode_fps", "Encoder output frames per second over the last second.", l, nil)
	m.descs.rtf = prometheus.NewDesc("dionysia_worker_realtime_factor", "Media time encoded per wall-clock second (1 = real time).", l, nil)
	m.descs.audio = prometheus.NewDesc("dionysia_worker_audio_frames_out_total", "AAC frames handed to the packager.", []string{"stream_id"}, nil)
	m.descs.health = newHealthDescs()
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) add(p *Pipeline) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.live[p] = struct{}{}
	m.mu.Unlock()
}

func (m *Metrics) remove(p *Pipeline) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.live, p)
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.descs.in, m.descs.out, m.descs.dropped, m.descs.dup, m.descs.fps, m.descs.rtf, m.descs.audio} {
		ch <- d
	}
	m.descs.health.describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	ps := make([]*Pipeline, 0, len(m.live))
	for p := range m.live {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	for _, p := range ps {
		s := p.Stats()
		for _, r := range s.Renditions {
			ch <- prometheus.MustNewConstMetric(m.descs.in, prometheus.CounterValue, float64(r.FramesIn), s.StreamID, r.Name)
			ch <- prometheus.MustNewConstMetric(m.descs.out, prometheus.CounterValue, float64(r.FramesOut), s.StreamID, r.Name)
			ch <- prometheus.MustNewConstMetric(m.descs.dropped, prometheus.CounterValue, float64(r.Dropped), s.StreamID, r.Name)
			ch <- prometheus.MustNewConstMetric(m.descs.dup, prometheus.CounterValue, float64(r.Duplicated), s.StreamID, r.Name)
			ch <- prometheus.MustNewConstMetric(m.descs.fps, prometheus.GaugeValue, r.EncodeFPS, s.StreamID, r.Name)
			ch <- prometheus.MustNewConstMetric(m.descs.rtf, prometheus.GaugeValue, r.RealtimeFactor, s.StreamID, r.Name)
		}
		ch <- prometheus.MustNewConstMetric(m.descs.audio, prometheus.CounterValue, float64(s.AudioFramesOut), s.StreamID)
		m.descs.health.collect(ch, s.StreamID, p.Health())
	}
}
