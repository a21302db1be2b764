package packager

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// History is the part of a session's live window that earlier owners of the
// stream produced (a worker that failed over) and recorded: a new owner
// resumes the session's DVR window from it (Resume), so viewers can still
// seek back over media this packager never made.
type History struct {
	// AvailabilityStart is the session's availabilityStartTime: the wall
	// clock that media time 0 of every segment's decode time maps to.
	AvailabilityStart time.Time
	// Runs are the earlier pipeline runs, oldest first.
	Runs []HistoryRun
}

// HistoryRun is one pipeline run of an earlier owner: its tracks' segments.
type HistoryRun struct {
	Tracks []HistoryTrack // video renditions first, then the audio ("audio")
}

// HistoryTrack is one track of a HistoryRun.
type HistoryTrack struct {
	Rendition string
	Audio     bool
	Timescale uint32
	// Desc is what the manifests say about the track until this packager
	// produces it itself.
	Codec         string
	Width, Height int
	FrameRate     string // "30" or "30000/1001"
	Bandwidth     int    // bit/s
	SampleRate    int
	Channels      int
	// Segments in number order; numbers increase by one.
	Segments []HistorySegment
}

// HistorySegment is one recorded segment.
type HistorySegment struct {
	Number     uint64
	MediaStart uint64 // decode time of its first sample, in Timescale ticks since AvailabilityStart
	Duration   uint64 // in Timescale ticks
	Size       int
}

// HistoryFile is a file Resume expects in the stream directory before
// Release: Path is relative to Config.Dir.
type HistoryFile struct {
	Path      string
	Rendition string
	Run       int // index into History.Runs
	// Number is the segment's number; 0 for a CMAF header.
	Number uint64
}

// ErrResumeLate is returned by Resume after Tracks was called.
var ErrResumeLate = errors.New("resume after the first run started")

// Resume makes the session's history the start of this packager's window:
// its segments are listed before this packager's own, each earlier run as a
// discontinuity (HLS) and a Period (DASH), on the same availabilityStartTime
// and program date times, so the window is whole across a failover. It must
// be called before Tracks. It returns the files the caller must put in place
// ({rendition}/init-h{run}.mp4 and {rendition}/{number}.m4s); until Release
// the packager publishes no playlist (its media goes on), so no player sees
// a window that later grows at the front.
//
// The packager's own segments are numbered after the history's and after
// the wall-clock number (so they never reuse a file name a CDN may hold from
// the earlier owner); media sequence numbers stay consecutive across both.
func (p *Packager) Resume(h History) ([]HistoryFile, error) {
	p.mu.Lock()
	defer p.unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.cur != nil || p.runs > 0 {
		return nil, ErrResumeLate
	}
	if h.AvailabilityStart.IsZero() || len(h.Runs) == 0 {
		return nil, errors.New("resuming: empty history")
	}
	var files []HistoryFile
	var last uint64
	count := 0 // segments of each rendition (they all have the same)
	for i, run := range h.Runs {
		per := &period{index: i, offset: time.Duration(math.MaxInt64)}
		runCount := -1
		for _, tr := range run.Tracks {
			if tr.Audio != (tr.Rendition == AudioName) || !nameRE.MatchString(tr.Rendition) {
				return nil, fmt.Errorf("resuming: %w: %q", ErrInvalidName, tr.Rendition)
			}
			if tr.Timescale == 0 || len(tr.Segments) == 0 {
				return nil, fmt.Errorf("resuming: track %s of run %d has no timescale or no segment", tr.Rendition, i)
			}
			if runCount >= 0 && len(tr.Segments) != runCount {
				return nil, fmt.Errorf("resuming: the tracks of run %d have different segment counts", i)
			}
			runCount = len(tr.Segments)
			rd := p.rendition(tr.Rendition, tr.Audio, tr.Timescale)
			if tr.Audio {
				per.audio = rd
			} else {
				per.video = append(per.video, rd)
			}
			init := "init-h" + strconv.Itoa(i) + ".mp4"
			files = append(files, HistoryFile{Path: filepath.Join(tr.Rendition, init), Rendition: tr.Rendition, Run: i})
			rd.initFiles = append(rd.initFiles, init)
			rd.initName = init
			rd.inits++
			rd.desc = historyDesc(tr)
			for j, s := range tr.Segments {
				if j > 0 && s.Number != tr.Segments[j-1].Number+1 {
					return nil, fmt.Errorf("resuming: track %s of run %d skips from segment %d to %d",
						tr.Rendition, i, tr.Segments[j-1].Number, s.Number)
				}
				rec := segmentRecord{number: s.Number, run: i, start: s.MediaStart, dur: s.Duration,
					scale: tr.Timescale, size: s.Size, init: init, disc: i > 0 && j == 0}
				rd.segs = append(rd.segs, rec)
				rd.lastRun = i
				rd.target = max(rd.target, int(math.Round(rec.duration().Seconds())), 1)
				per.offset = min(per.offset, rec.startTime())
				p.mediaEnd = max(p.mediaEnd, rec.startTime()+rec.duration())
				last = max(last, s.Number)
				files = append(files, HistoryFile{Path: filepath.Join(tr.Rendition, rec.file()), Rendition: tr.Rendition, Run: i, Number: s.Number})
			}
		}
		if runCount < 0 {
			return nil, fmt.Errorf("resuming: run %d has no track", i)
		}
		count += runCount
		p.periods = append(p.periods, per)
	}
	for _, name := range p.order {
		if len(p.rends[name].segs) != count {
			return nil, fmt.Errorf("resuming: rendition %s is missing from some runs", name)
		}
	}
	now := p.cfg.Clock()
	p.ast = h.AvailabilityStart.Truncate(time.Millisecond)
	p.runs = len(h.Runs)
	p.histRuns = len(h.Runs)
	p.haveNumber = true
	p.nextNumber = max(last+1, uint64(now.UnixNano()/int64(p.cfg.SegmentDuration)), p.minNumber)
	// Media sequence numbers: the history's end where this packager's first
	// segment (numbered nextNumber) begins.
	for _, name := range p.order {
		rd := p.rends[name]
		for j := range rd.segs {
			rd.segs[j].msn = p.nextNumber - uint64(count-j)
			rd.segs[j].hist = true
		}
	}
	p.held = true
	return files, nil
}

// Release publishes the playlists Resume held back. The history is first cut
// to what is in place: before the newest segment (or CMAF header) missing
// from the stream directory in any rendition, nothing is listed, so every
// rendition lists the same segments and no listed file is missing. It is a
// no-op without Resume; Close releases too.
func (p *Packager) Release() error {
	p.mu.Lock()
	defer p.unlock()
	return p.release()
}

func (p *Packager) release() error {
	if !p.held {
		return nil
	}
	p.held = false
	// The newest history segment start (per rendition index) that is missing.
	cut := -1 // keep rd.segs[cut+1:] of the history
	for _, name := range p.order {
		rd := p.rends[name]
		dir := filepath.Join(p.cfg.Dir, rd.name)
		for j, s := range rd.segs {
			if !s.hist {
				break // this packager's own segments follow the history
			}
			if !exists(filepath.Join(dir, s.file())) || !exists(filepath.Join(dir, s.init)) {
				cut = max(cut, j)
			}
		}
	}
	var errs []error
	if cut >= 0 {
		p.log.Warn("DVR history incomplete: listing only what is in place", "dropped_segments", cut+1)
		for _, name := range p.order {
			rd := p.rends[name]
			n := 0 // history segments to drop (none in a rendition new in this run)
			for n <= cut && n < len(rd.segs) && rd.segs[n].hist {
				n++
			}
			dropped := rd.segs[:n]
			rd.segs = rd.segs[n:]
			for _, s := range dropped {
				if err := os.Remove(filepath.Join(p.cfg.Dir, rd.name, s.file())); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			if len(rd.segs) > 0 && rd.segs[0].disc {
				rd.segs[0].disc = false // nothing before it is listed
			}
			errs = append(errs, p.trim(rd))
		}
	}
	for _, name := range p.order {
		errs = append(errs, p.writeMediaPlaylist(p.rends[name]))
	}
	errs = append(errs, p.writeMultivariant(), p.writeMPD())
	return errors.Join(errs...)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func historyDesc(tr HistoryTrack) trackDesc {
	d := trackDesc{codec: tr.Codec, width: tr.Width, height: tr.Height, bitrate: tr.Bandwidth, maxBitrate: tr.Bandwidth,
		sampleRate: tr.SampleRate, channels: tr.Channels}
	num, den, ok := parseRate(tr.FrameRate)
	if ok {
		d.frameRateNum, d.frameRateDen = num, den
		d.frameRate = float64(num) / float64(den)
	}
	return d
}

func parseRate(s string) (num, den int, ok bool) {
	n, d := s, "1"
	for i := range len(s) {
		if s[i] == '/' {
			n, d = s[:i], s[i+1:]
			break
		}
	}
	a, err1 := strconv.Atoi(n)
	b, err2 := strconv.Atoi(d)
	if err1 != nil || err2 != nil || a <= 0 || b <= 0 {
		return 0, 0, false
	}
	return a, b, true
}
