package packager

import "time"

// Stats is a snapshot of the packager's counters, for metrics.
type Stats struct {
	// Runs is the number of pipeline runs (Tracks calls) so far; Runs-1
	// discontinuities have been started.
	Runs   int
	Tracks []TrackStats
}

// TrackStats describes one output track (a video rendition or "audio").
type TrackStats struct {
	Name     string
	Segments uint64 // segments written since New
	Bytes    uint64 // bytes of segments written since New
	Dropped  uint64 // input samples dropped (malformed, out of order, before the first keyframe)
	// LastNumber is the newest segment's number; MediaSequence is the number of
	// the oldest segment listed (EXT-X-MEDIA-SEQUENCE). Both are 0 before the
	// first segment.
	LastNumber    uint64
	MediaSequence uint64
	// LastDuration is the newest segment's media duration; LastWriteLatency is
	// the time from its cut to its file being renamed into place.
	LastDuration     time.Duration
	LastWriteLatency time.Duration
	// PeakBitrate and AverageBitrate are measured over the session, in bit/s.
	PeakBitrate    int
	AverageBitrate int
}

// Stats returns a snapshot of the counters.
func (p *Packager) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{Runs: p.runs - p.histRuns}
	for _, name := range p.order {
		rd := p.rends[name]
		ts := TrackStats{
			Name:             rd.name,
			Segments:         rd.segments,
			Bytes:            rd.bytes,
			Dropped:          rd.dropped,
			LastDuration:     rd.lastDur,
			LastWriteLatency: rd.lastLatency,
		}
		if len(rd.segs) > 0 {
			ts.LastNumber = rd.segs[len(rd.segs)-1].number
			ts.MediaSequence = rd.window(p.cfg.WindowSize)[0].number
			ts.PeakBitrate, ts.AverageBitrate = rd.bandwidth(0, 0)
		}
		st.Tracks = append(st.Tracks, ts)
	}
	return st
}
