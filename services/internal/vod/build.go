// Package vod turns a recorded asset's CMAF objects (docs/recording.md) into
// its VOD files, written next to them under job.AssetPrefix: an HLS
// multivariant playlist (index.m3u8) and one media playlist per rendition
// ({rendition}/index.m3u8), a static DASH MPD (manifest.mpd), a progressive
// MP4 of the top rendition and the audio (download.mp4, remuxed from the
// stored fragments, never re-encoded) and a poster (poster.jpg, a copy of a
// recorded thumbnail).
//
// The objects may come from several workers (an ownership failover) and
// several packager runs on each: every run has its own init per rendition,
// and a run change, a lost segment or a time gap starts a new discontinuity
// (HLS) or Period (DASH). Build only reads the recorded objects, so running
// it again overwrites the same files with the same content.
package vod

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
)

// Names of the files Build writes, relative to job.AssetPrefix.
const (
	MultivariantName = "index.m3u8"
	PlaylistName     = "index.m3u8" // inside each rendition's directory
	ManifestName     = "manifest.mpd"
	DownloadName     = "download.mp4"
	PosterName       = "poster.jpg"
)

// ErrNoSegments: the asset has no segment to build VOD files from.
var ErrNoSegments = errors.New("asset has no segments")

// gapTolerance is how far (seconds) a segment may start after the end of the
// previous one before the gap is a discontinuity.
const gapTolerance = 0.5

// keyRE is what the objects' keys are made of (job.AssetPrefix): nothing
// that would need quoting in a playlist or a URI.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)

// renditionRE is a rendition's name: a ladder rung's (pkg/ladder) or "audio".
var renditionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// posterAt is where in the asset (a fraction of its duration) the poster is
// taken from.
const posterAt = 0.1

// segment is one recorded media segment of a track.
type segment struct {
	job.RecordedObject
	size int64  // as stored
	run  string // the packager run: the init's name without the rendition
	// disc: the segment starts a new contiguous block (the first segment,
	// a new init, a number jump or a time gap).
	disc bool
}

func (s *segment) end() time.Time { return s.Start.Add(seconds(s.DurationS)) }

// track is one rendition: its segments in play order.
type track struct {
	name  string
	audio bool
	desc  job.RecordedTrack // from the init of its first segment
	segs  []*segment
	// peak and avg are measured bit rates (bits/s).
	peak, avg float64
}

func (t *track) duration() float64 {
	var d float64
	for _, s := range t.segs {
		d += s.DurationS
	}
	return d
}

func (t *track) bandwidth() int {
	if t.peak > 0 {
		return int(math.Ceil(t.peak))
	}
	return t.desc.Bandwidth
}

func (t *track) averageBandwidth() int {
	if t.avg > 0 {
		return int(math.Ceil(t.avg))
	}
	return t.desc.Bandwidth
}

// asset is the parsed Input.
type asset struct {
	prefix string
	video  []*track // highest bandwidth first
	audio  []*track // highest bandwidth first
	thumbs []job.RecordedObject
	inits  map[string]job.RecordedObject
	stored int64 // total size of the recorded objects
}

// top is the track DurationS and the DASH Periods follow: the top video
// rendition, else the audio.
func (a *asset) top() *track {
	if len(a.video) > 0 {
		return a.video[0]
	}
	return a.audio[0]
}

func (a *asset) tracks() []*track { return append(slices.Clone(a.video), a.audio...) }

// Build writes the VOD files of in.AssetID into st and describes them. It
// fails, naming what is wrong, when the asset has no segment
// (ErrNoSegments), when an object is missing from the store or outside the
// asset's prefix, or when a segment's init is not among the objects.
func Build(ctx context.Context, st storage.Store, in Input) (Result, error) {
	a, err := load(ctx, st, in)
	if err != nil {
		return Result{}, err
	}
	// download.mp4 first (it reads every segment of its tracks), the
	// multivariant playlist, the entry point, last.
	w := &writer{st: st}
	n, err := writeDownload(ctx, st, a, a.prefix+DownloadName)
	if err != nil {
		return Result{}, err
	}
	w.written += n
	poster, err := w.poster(ctx, a)
	if err != nil {
		return Result{}, err
	}
	mpd, err := manifest(a)
	if err != nil {
		return Result{}, err
	}
	if err := w.put(ctx, a.prefix+ManifestName, mpd, "application/dash+xml"); err != nil {
		return Result{}, err
	}
	for _, t := range a.tracks() {
		dir := a.prefix + t.name + "/"
		if err := w.put(ctx, dir+PlaylistName, []byte(mediaPlaylist(t, dir)), "application/vnd.apple.mpegurl"); err != nil {
			return Result{}, err
		}
	}
	if err := w.put(ctx, a.prefix+MultivariantName, []byte(multivariant(a)), "application/vnd.apple.mpegurl"); err != nil {
		return Result{}, err
	}

	res := Result{
		DurationS: a.top().duration(),
		SizeBytes: a.stored + w.written,
		Poster:    poster,
		LostS:     lostSeconds(in.Lost),
	}
	for _, t := range a.tracks() {
		res.Renditions = append(res.Renditions, Rendition{
			Name: t.name, Width: t.desc.Width, Height: t.desc.Height,
			Bandwidth: t.bandwidth(), Codec: t.desc.Codec, Audio: t.audio,
		})
	}
	return res, nil
}

// load checks the objects against the store and sorts them into tracks.
func load(ctx context.Context, st storage.Store, in Input) (*asset, error) {
	a := &asset{prefix: job.AssetPrefix(in.AssetID), inits: map[string]job.RecordedObject{}}
	listed, err := st.List(ctx, a.prefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", a.prefix, err)
	}
	sizes := make(map[string]int64, len(listed))
	for _, info := range listed {
		sizes[info.Key] = info.Size
	}
	var segs []*segment
	seen := map[string]bool{}
	for _, o := range in.Objects {
		if !strings.HasPrefix(o.Key, a.prefix) || storage.CheckKey(o.Key) != nil || !keyRE.MatchString(o.Key) {
			return nil, fmt.Errorf("object %q is not a key inside %s", o.Key, a.prefix)
		}
		size, ok := sizes[o.Key]
		if !ok {
			return nil, fmt.Errorf("object %s is missing from the store: %w", o.Key, storage.ErrNotFound)
		}
		if seen[o.Key] {
			continue // reported twice (a retried report): count it once
		}
		seen[o.Key] = true
		a.stored += size
		switch o.Kind {
		case job.ObjectInit:
			if o.Track == nil {
				return nil, fmt.Errorf("init %s has no track description", o.Key)
			}
			a.inits[o.Key] = o
		case job.ObjectSegment:
			if !renditionRE.MatchString(o.Rendition) {
				return nil, fmt.Errorf("segment %s: invalid rendition %q", o.Key, o.Rendition)
			}
			segs = append(segs, &segment{RecordedObject: o, size: size, run: runOf(o.Init)})
		case job.ObjectThumbnail:
			a.thumbs = append(a.thumbs, o)
		default:
			return nil, fmt.Errorf("object %s: unknown kind %q", o.Key, o.Kind)
		}
	}
	if len(segs) == 0 {
		return nil, ErrNoSegments
	}
	byName := map[string]*track{}
	var order []*track
	for _, s := range segs {
		init, ok := a.inits[s.Init]
		if !ok {
			return nil, fmt.Errorf("segment %s: its init %q is not among the asset's objects", s.Key, s.Init)
		}
		t := byName[s.Rendition]
		if t == nil {
			t = &track{name: s.Rendition, audio: init.Track.Audio, desc: *init.Track}
			byName[s.Rendition] = t
			order = append(order, t)
		}
		t.segs = append(t.segs, s)
	}
	for _, t := range order {
		arrange(t)
		if t.audio {
			a.audio = append(a.audio, t)
		} else {
			a.video = append(a.video, t)
		}
	}
	alignBlocks(order)
	byBandwidth := func(x, y *track) int { return cmp.Compare(y.bandwidth(), x.bandwidth()) }
	slices.SortStableFunc(a.video, byBandwidth)
	slices.SortStableFunc(a.audio, byBandwidth)
	return a, nil
}

// spanKey places a segment on the asset's timeline: its run (in the order
// the runs started) and its number.
type spanKey struct {
	run    int
	number uint64
}

func (k spanKey) compare(o spanKey) int {
	return cmp.Or(cmp.Compare(k.run, o.run), cmp.Compare(k.number, o.number))
}

// alignBlocks makes every track start a block where any track does: a
// segment one rendition lost is a discontinuity in all of them, so the
// renditions' discontinuity sequences match (RFC 8216 §6.2.4; hls.js pairs
// audio with video by it) and the DASH Periods split every track alike.
func alignBlocks(tracks []*track) {
	first := map[string]time.Time{}
	for _, t := range tracks {
		for _, s := range t.segs {
			if f, ok := first[s.run]; !ok || s.Start.Before(f) {
				first[s.run] = s.Start
			}
		}
	}
	runs := make([]string, 0, len(first))
	for r := range first {
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(x, y string) int { return cmp.Or(first[x].Compare(first[y]), cmp.Compare(x, y)) })
	index := make(map[string]int, len(runs))
	for i, r := range runs {
		index[r] = i
	}
	key := func(s *segment) spanKey { return spanKey{index[s.run], s.Number} }

	var bounds []spanKey
	for _, t := range tracks {
		for i, s := range t.segs {
			if i > 0 && s.disc {
				bounds = append(bounds, key(s))
			}
		}
	}
	slices.SortFunc(bounds, spanKey.compare)
	for _, t := range tracks {
		for i := 1; i < len(t.segs); i++ {
			prev, s := key(t.segs[i-1]), key(t.segs[i])
			// a bound b with prev < b <= s
			j, _ := slices.BinarySearchFunc(bounds, prev, spanKey.compare)
			for j < len(bounds) && bounds[j].compare(prev) <= 0 {
				j++
			}
			if j < len(bounds) && bounds[j].compare(s) <= 0 {
				t.segs[i].disc = true
			}
		}
	}
}

// arrange puts a track's segments in play order (wall clock, then number;
// accepted order breaks ties), marks where a new contiguous block starts
// and measures the bit rates.
func arrange(t *track) {
	slices.SortStableFunc(t.segs, func(x, y *segment) int {
		return cmp.Or(x.Start.Compare(y.Start), cmp.Compare(x.Number, y.Number))
	})
	var bits, dur, longest float64
	for i, s := range t.segs {
		s.disc = i == 0 || startsBlock(t.segs[i-1], s)
		longest = max(longest, s.DurationS)
		if s.DurationS > 0 {
			bits += float64(s.size) * 8
			dur += s.DurationS
		}
	}
	// The peak leaves out short segments (the last of a run), whose
	// headers would make it look much higher than any full segment's.
	for _, s := range t.segs {
		if s.DurationS > 0 && s.DurationS >= longest/2 {
			t.peak = max(t.peak, float64(s.size)*8/s.DurationS)
		}
	}
	if dur > 0 {
		t.avg = bits / dur
	}
}

// startsBlock says whether s cannot play straight after prev: another init
// (another run or worker), a segment number jump, or a time gap.
func startsBlock(prev, s *segment) bool {
	if s.Init != prev.Init || s.Number != prev.Number+1 {
		return true
	}
	return s.Start.Sub(prev.end()).Seconds() > gapTolerance
}

// runOf names the packager run an init belongs to: its file name without the
// rendition directory, the same for every rendition of the run
// ("init-{token}-{run}.mp4").
func runOf(initKey string) string { return path.Base(initKey) }

// lostSeconds sums the lost segments' durations, each number once.
func lostSeconds(lost []job.LostSegment) float64 {
	byNumber := map[uint64]float64{}
	for _, l := range lost {
		byNumber[l.Number] = max(byNumber[l.Number], l.DurationS)
	}
	var total float64
	for _, d := range byNumber {
		total += d
	}
	return total
}

// writer puts files into the store and counts their bytes.
type writer struct {
	st      storage.Store
	written int64
}

func (w *writer) put(ctx context.Context, key string, data []byte, contentType string) error {
	if err := w.st.Put(ctx, key, bytes.NewReader(data), int64(len(data)), contentType); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	w.written += int64(len(data))
	return nil
}

// poster copies the thumbnail nearest posterAt of the asset's duration to
// poster.jpg and returns its key, or "" when there is no thumbnail.
func (w *writer) poster(ctx context.Context, a *asset) (string, error) {
	if len(a.thumbs) == 0 {
		return "", nil
	}
	top := a.top()
	target := top.segs[0].Start.Add(seconds(posterAt * top.duration()))
	best := a.thumbs[0]
	if !target.IsZero() {
		for _, th := range a.thumbs[1:] {
			if th.Start.IsZero() {
				continue
			}
			if best.Start.IsZero() || absDur(th.Start.Sub(target)) < absDur(best.Start.Sub(target)) {
				best = th
			}
		}
	}
	rc, info, err := w.st.Get(ctx, best.Key, 0, 0)
	if err != nil {
		return "", fmt.Errorf("reading thumbnail %s: %w", best.Key, err)
	}
	defer rc.Close()
	key := a.prefix + PosterName
	if err := w.st.Put(ctx, key, rc, info.Size, "image/jpeg"); err != nil {
		return "", fmt.Errorf("writing %s: %w", key, err)
	}
	w.written += info.Size
	return key, nil
}

// relative returns key as a URI relative to the directory dir (both inside
// the same asset prefix, dir ending in "/").
func relative(dir, key string) string {
	d := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	k := strings.Split(key, "/")
	i := 0
	for i < len(d) && i < len(k)-1 && d[i] == k[i] {
		i++
	}
	return strings.Repeat("../", len(d)-i) + strings.Join(k[i:], "/")
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * float64(time.Second))) }

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// readAll reads a whole object.
func readAll(ctx context.Context, st storage.Store, key string) ([]byte, error) {
	rc, _, err := st.Get(ctx, key, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return data, nil
}
