package packager

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// rendition is the history of one output track (a video rendition or the
// audio) across pipeline runs: its published segments and statistics.
type rendition struct {
	name      string
	audio     bool
	timescale uint32

	segs        []segmentRecord // published and still on disk, oldest first
	discDropped uint64          // discontinuities among segments deleted from segs
	lastRun     int             // run of the newest segment, -1 before the first
	initName    string          // newest CMAF header file name
	initData    []byte
	inits       int
	initFiles   []string
	target      int // HLS target duration in seconds, never decreases
	written     bool
	ended       bool
	desc        trackDesc
	warned      map[string]bool

	// statistics
	dropped     uint64
	segments    uint64
	bytes       uint64
	lastLatency time.Duration
	lastDur     time.Duration
	peakBps     int
	fullSegs    int
	sumBytes    uint64
	sumDur      time.Duration
}

// trackDesc is what the manifests say about a track, from its latest run.
type trackDesc struct {
	codec         string
	width, height int
	frameRateNum  int
	frameRateDen  int
	frameRate     float64
	bitrate       int
	maxBitrate    int
	sampleRate    int
	channels      int
}

// segmentRecord describes one segment file.
type segmentRecord struct {
	number uint64
	run    int
	start  uint64 // decode time of the first sample, in ticks since availabilityStartTime
	dur    uint64 // ticks
	scale  uint32 // ticks per second (a restart may change the audio sample rate)
	size   int
	init   string // CMAF header file it needs
	disc   bool   // first segment of a new run
	// History segments (Resume) have their own media sequence number; this
	// packager's segments use their number.
	hist bool
	msn  uint64
}

// seq is the segment's HLS media sequence number.
func (s segmentRecord) seq() uint64 {
	if s.hist {
		return s.msn
	}
	return s.number
}

func (s segmentRecord) file() string { return strconv.FormatUint(s.number, 10) + ".m4s" }

func (s segmentRecord) startTime() time.Duration { return fromTicks(s.start, s.scale) }
func (s segmentRecord) duration() time.Duration  { return fromTicks(s.dur, s.scale) }

// window returns the segments listed in the playlists.
func (rd *rendition) window(n int) []segmentRecord {
	if len(rd.segs) <= n {
		return rd.segs
	}
	return rd.segs[len(rd.segs)-n:]
}

// discontinuitySequence counts the discontinuities before the listed window.
func (rd *rendition) discontinuitySequence(n int) uint64 {
	seq := rd.discDropped
	for _, s := range rd.segs[:len(rd.segs)-len(rd.window(n))] {
		if s.disc {
			seq++
		}
	}
	return seq
}

// bandwidth returns the peak and average bitrate in bit/s: measured once a
// segment of at least half the target duration exists, else the fallbacks.
func (rd *rendition) bandwidth(fallbackPeak, fallbackAvg int) (peak, avg int) {
	peak, avg = fallbackPeak, fallbackAvg
	if rd.fullSegs > 0 && rd.sumDur > 0 {
		peak = rd.peakBps
		avg = int(math.Ceil(float64(rd.sumBytes*8) / rd.sumDur.Seconds()))
	}
	return max(peak, avg), avg
}

// ticks converts a duration to a timescale, rounding to nearest.
func ticks(d time.Duration, timescale uint32) int64 {
	if d < 0 {
		return -ticks(-d, timescale)
	}
	ts := int64(timescale)
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	return sec*ts + (rem*ts+int64(time.Second)/2)/int64(time.Second)
}

// fromTicks converts track ticks to a duration.
func fromTicks(t uint64, timescale uint32) time.Duration {
	ts := uint64(timescale)
	return time.Duration(t/ts)*time.Second + time.Duration((t%ts)*uint64(time.Second)/ts)
}

// cut writes samples as the segment tr.seg of the current run. end is the
// pipeline timestamp (DTS for video, PTS for audio) of the sample that follows
// the segment when haveEnd; otherwise the last sample's duration is estimated.
func (p *Packager) cut(tr *trackRun, samples []sample, end time.Duration, haveEnd bool) error {
	if len(samples) == 0 {
		return nil
	}
	began := time.Now()
	r := p.cur
	rd := tr.rend
	var frags []fragSample
	if tr.isAudio {
		frags = p.audioSamples(tr, samples, end, haveEnd)
	} else {
		frags = p.videoSamples(tr, samples, end, haveEnd)
	}
	number := r.startNumber + uint64(tr.seg)
	data, err := encodeSegment(uint32(number), frags)
	if err != nil {
		return fmt.Errorf("packaging segment %d of %s: %w", number, rd.name, err)
	}
	dir := filepath.Join(p.cfg.Dir, rd.name)
	if !p.dirs[dir] {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating rendition directory: %w", err)
		}
		p.dirs[dir] = true
	}
	if tr.initName == "" {
		if !bytes.Equal(rd.initData, tr.init) {
			name := "init.mp4"
			if rd.inits > 0 {
				name = fmt.Sprintf("init-%d.mp4", r.index)
			}
			if err := WriteFileAtomic(filepath.Join(dir, name), tr.init); err != nil {
				return fmt.Errorf("writing init segment: %w", err)
			}
			rd.initName, rd.initData = name, tr.init
			rd.inits++
			rd.initFiles = append(rd.initFiles, name)
		}
		tr.initName = rd.initName
		p.queueInit(tr, dir)
	}
	rec := segmentRecord{
		number: number,
		run:    r.index,
		start:  frags[0].decode,
		scale:  rd.timescale,
		size:   len(data),
		init:   tr.initName,
		disc:   rd.lastRun >= 0 && rd.lastRun != r.index,
	}
	for _, f := range frags {
		rec.dur += uint64(f.dur)
	}
	if err := WriteFileAtomic(filepath.Join(dir, rec.file()), data); err != nil {
		return fmt.Errorf("writing segment: %w", err)
	}

	p.queueSegment(rd, dir, rec)

	rd.lastRun = r.index
	rd.segs = append(rd.segs, rec)
	dur := rec.duration()
	rd.segments++
	rd.bytes += uint64(len(data))
	rd.lastDur = dur
	rd.sumBytes += uint64(len(data))
	rd.sumDur += dur
	if dur >= p.cfg.SegmentDuration/2 {
		rd.fullSegs++
		rd.peakBps = max(rd.peakBps, int(math.Ceil(float64(len(data)*8)/dur.Seconds())))
	}
	rd.target = max(rd.target, int(math.Round(dur.Seconds())), int(math.Round(p.cfg.SegmentDuration.Seconds())), 1)
	rd.desc = describe(tr)
	p.nextNumber = max(p.nextNumber, number+1)
	p.mediaEnd = max(p.mediaEnd, rec.startTime()+dur)
	trimErr := p.trim(rd)
	rd.lastLatency = time.Since(began)

	return errors.Join(trimErr, p.writeMediaPlaylist(rd), p.writeMultivariant(), p.writeMPD())
}

func describe(tr *trackRun) trackDesc {
	if tr.isAudio {
		return trackDesc{codec: tr.codec, bitrate: tr.audio.BitrateBps, maxBitrate: tr.audio.BitrateBps,
			sampleRate: tr.audio.SampleRate, channels: tr.audio.Channels}
	}
	d := trackDesc{
		codec: tr.codec, width: tr.params.width, height: tr.params.height,
		frameRateNum: tr.video.FrameRateNum, frameRateDen: tr.video.FrameRateDen,
		frameRate: tr.params.frameRate, bitrate: tr.video.BitrateBps, maxBitrate: tr.video.MaxBitrateBps,
	}
	if d.frameRateNum > 0 && d.frameRateDen > 0 {
		d.frameRate = float64(d.frameRateNum) / float64(d.frameRateDen)
	}
	return d
}

// videoSamples converts buffered access units to fragment samples. Decode
// times are shifted by the track's reorder delay so the first keyframe decodes
// and presents at the same instant; B-frames then get negative composition
// offsets (trun version 1), as CMAF allows.
func (p *Packager) videoSamples(tr *trackRun, samples []sample, end time.Duration, haveEnd bool) []fragSample {
	r := p.cur
	out := make([]fragSample, len(samples))
	for i, s := range samples {
		dt := max(ticks(r.mediaTime(s.dts+tr.delay), videoTimescale), 0)
		if dt <= tr.lastTick {
			dt = tr.lastTick + 1
		}
		tr.lastTick = dt
		pt := ticks(r.mediaTime(s.pts), videoTimescale)
		out[i] = fragSample{decode: uint64(dt), cto: clampInt32(pt - dt), sync: s.key, data: s.data}
	}
	for i := 0; i+1 < len(out); i++ {
		out[i].dur = uint32(out[i+1].decode - out[i].decode)
	}
	last := &out[len(out)-1]
	var d int64
	if haveEnd {
		d = ticks(r.mediaTime(end+tr.delay), videoTimescale) - int64(last.decode)
	}
	if d <= 0 {
		switch {
		case samples[len(samples)-1].dur > 0:
			d = ticks(samples[len(samples)-1].dur, videoTimescale)
		case len(out) > 1:
			d = int64(out[len(out)-2].dur)
		default:
			d = ticks(tr.frameDur, videoTimescale)
		}
	}
	last.dur = uint32(max(min(d, math.MaxUint32), 1))
	return out
}

// audioSamples converts AAC frames to fragment samples on a continuous
// timeline: a frame whose PTS is within half a frame of where the previous one
// ended is placed exactly there, so rounding never leaves gaps; larger jumps
// (dropped frames) are kept.
func (p *Packager) audioSamples(tr *trackRun, samples []sample, end time.Duration, haveEnd bool) []fragSample {
	r := p.cur
	rate := uint32(tr.audio.SampleRate)
	out := make([]fragSample, len(samples))
	frame := func(s sample) int64 {
		if s.dur > 0 {
			return max(ticks(s.dur, rate), 1)
		}
		return 1024
	}
	snap := func(t, half int64) int64 {
		if tr.nextTick >= 0 && t-tr.nextTick <= half && tr.nextTick-t <= half {
			return tr.nextTick
		}
		return t
	}
	for i, s := range samples {
		f := frame(s)
		t := max(snap(ticks(r.mediaTime(s.pts), rate), f/2), 0)
		if t <= tr.lastTick {
			t = tr.lastTick + 1
		}
		tr.lastTick = t
		tr.nextTick = t + f
		out[i] = fragSample{decode: uint64(t), sync: true, data: s.data}
	}
	for i := 0; i+1 < len(out); i++ {
		out[i].dur = uint32(out[i+1].decode - out[i].decode)
	}
	last := &out[len(out)-1]
	f := frame(samples[len(samples)-1])
	d := f
	if haveEnd {
		if e := snap(ticks(r.mediaTime(end), rate), f/2) - int64(last.decode); e > 0 {
			d = e
		}
	}
	last.dur = uint32(min(d, math.MaxUint32))
	return out
}

func clampInt32(v int64) int32 {
	return int32(max(min(v, math.MaxInt32), math.MinInt32))
}

// trim forgets segments beyond the window plus the extra ones kept on disk,
// deleting their files and any CMAF header no longer referenced.
func (p *Packager) trim(rd *rendition) error {
	keep := p.cfg.WindowSize + p.cfg.ExtraSegments
	dir := filepath.Join(p.cfg.Dir, rd.name)
	var errs []error
	for len(rd.segs) > keep {
		old := rd.segs[0]
		if old.disc {
			rd.discDropped++
		}
		rd.segs = rd.segs[1:]
		if err := os.Remove(filepath.Join(dir, old.file())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("deleting old segment: %w", err))
		}
	}
	used := map[string]bool{rd.initName: true}
	for _, s := range rd.segs {
		used[s.init] = true
	}
	kept := rd.initFiles[:0]
	for _, name := range rd.initFiles {
		if used[name] {
			kept = append(kept, name)
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("deleting old init segment: %w", err))
		}
	}
	rd.initFiles = kept
	return errors.Join(errs...)
}
