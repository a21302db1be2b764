package packager

import (
	"cmp"
	"path/filepath"
	"strconv"
	"time"
)

// Kinds of File.
const (
	FileInit    = "init"    // a track's CMAF header for one run
	FileSegment = "segment" // a CMAF media segment
)

// File describes a CMAF file the packager completed, for Config.OnFile.
type File struct {
	Kind      string // FileInit or FileSegment
	Rendition string // video rendition name, or AudioName
	Run       int    // pipeline run (Tracks call) on this packager, from 0
	Path      string // the file, inside Config.Dir
	Size      int64

	// Inits only: the track as the manifests describe it.
	Track *Track

	// Segments only. Number is the same in every track for the same time
	// span; Init is the file name of the CMAF header the segment needs (in
	// the rendition's directory; it may have been written by an earlier run
	// whose header was identical). Start is the wall-clock time of the first
	// sample, as EXT-X-PROGRAM-DATE-TIME gives it; MediaStart the tfdt
	// baseMediaDecodeTime in Track.Timescale ticks.
	Number     uint64
	Init       string
	Start      time.Time
	Duration   time.Duration
	MediaStart uint64
	Timescale  uint32
}

// Track describes one track of a run.
type Track struct {
	Audio      bool
	Codec      string // RFC 6381, e.g. avc1.64001f, mp4a.40.2
	Timescale  uint32
	Width      int
	Height     int
	FrameRate  string // "30", "30000/1001"; empty when unknown
	Bandwidth  int    // bit/s: the configured peak (video), the bitrate (audio), else a fallback
	Channels   int
	SampleRate int
}

// queueInit records a track's CMAF header for this run (called with p.mu held).
func (p *Packager) queueInit(tr *trackRun, dir string) {
	if p.cfg.OnFile == nil {
		return
	}
	rd := tr.rend
	d := describe(tr)
	track := &Track{
		Audio: tr.isAudio, Codec: d.codec, Timescale: rd.timescale,
		Width: d.width, Height: d.height, FrameRate: frameRateAttr(d),
		Channels: d.channels, SampleRate: d.sampleRate,
	}
	switch {
	case tr.isAudio:
		track.Bandwidth = cmp.Or(d.bitrate, 128_000)
	default:
		track.Bandwidth = cmp.Or(d.maxBitrate, d.bitrate)
	}
	p.files = append(p.files, File{
		Kind: FileInit, Rendition: rd.name, Run: p.cur.index,
		Path: filepath.Join(dir, tr.initName), Size: int64(len(tr.init)), Track: track,
	})
}

// queueSegment records a segment just written (called with p.mu held).
func (p *Packager) queueSegment(rd *rendition, dir string, rec segmentRecord) {
	if p.cfg.OnFile == nil {
		return
	}
	p.files = append(p.files, File{
		Kind: FileSegment, Rendition: rd.name, Run: rec.run,
		Path: filepath.Join(dir, rec.file()), Size: int64(rec.size),
		Number: rec.number, Init: rec.init,
		Start:    p.ast.Add(rec.startTime()).UTC().Truncate(time.Millisecond),
		Duration: rec.duration(), MediaStart: rec.start, Timescale: rec.scale,
	})
}

// unlock releases p.mu and hands the files completed meanwhile to OnFile.
// notifyMu is taken before p.mu is released, so files reach OnFile in the
// order they were written even when several goroutines write.
func (p *Packager) unlock() {
	files := p.files
	p.files = nil
	if len(files) == 0 {
		p.mu.Unlock()
		return
	}
	p.notifyMu.Lock()
	p.mu.Unlock()
	defer p.notifyMu.Unlock()
	for _, f := range files {
		p.cfg.OnFile(f)
	}
}

// String names the file for logs.
func (f File) String() string {
	if f.Kind == FileInit {
		return f.Rendition + "/init (run " + strconv.Itoa(f.Run) + ")"
	}
	return f.Rendition + "/" + strconv.FormatUint(f.Number, 10) + ".m4s"
}
