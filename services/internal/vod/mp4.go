package vod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/dionysia/dionysia/pkg/storage"
)

// movieTimescale is the mvhd (and tkhd, elst) timescale of download.mp4.
const movieTimescale = 1000

// The progressive MP4 (download.mp4) holds the top video rendition and the
// first audio rendition, remuxed: the samples of the stored CMAF fragments
// are copied, in play order, into one mdat behind a moov with full sample
// tables (faststart). Sample durations are concatenated, so the timeline is
// continuous across runs and gaps (a gap is cut out, as in the playlists'
// discontinuities). Only segment numbers both tracks have are used, so audio
// and video stay in sync when one of them lost a segment. The tracks keep
// the sample entry most of their segments have: a run whose sample entry differs
// (other parameter sets, e.g. after a failover to a worker encoding with
// other settings) is left out of the file, both its tracks, because players
// handle a second sample entry in one track poorly (ffmpeg's parser logs
// errors at the switch); the playlists and the MPD still have it. Each
// segment of each track is one chunk, video and audio interleaved.

// mp4Track is one output track being built.
type mp4Track struct {
	src    *track
	trak   *mp4.TrakBox // from the first init, its stbl replaced at the end
	scale  uint32
	inits  map[string]uint32 // init key -> 1: the same sample entry, 0: another one
	trexes map[string]*mp4.TrexBox

	sizes  []uint32
	durs   []uint32
	ctos   []int32
	syncs  []uint32 // 1-based numbers of sync samples
	chunks []mp4Chunk
	dur    uint64 // media timescale
	elst   int64  // media time the presentation starts at (the first init's edit list), -1: none
}

type mp4Chunk struct {
	offset  uint64 // in the mdat payload
	samples uint32
	sdi     uint32
}

// writeDownload builds download.mp4 and stores it at key. It returns its
// size.
func writeDownload(ctx context.Context, st storage.Store, a *asset, key string) (int64, error) {
	var srcs []*track
	if len(a.video) > 0 {
		srcs = append(srcs, a.video[0])
	}
	if len(a.audio) > 0 {
		srcs = append(srcs, a.audio[0])
	}
	tracks := make([]*mp4Track, len(srcs))
	for i, t := range srcs {
		mt, err := newMP4Track(ctx, st, t)
		if err != nil {
			return 0, err
		}
		tracks[i] = mt
	}
	groups := sampleGroups(tracks)
	if len(groups) == 0 && len(tracks) > 1 {
		// No span has both tracks (the audio of every run lost or
		// incompatible): the file has the video alone.
		tracks = tracks[:1]
		groups = sampleGroups(tracks)
	}
	if len(groups) == 0 {
		return 0, fmt.Errorf("building %s: no segment of the top rendition has usable samples", key)
	}

	tmp, err := os.CreateTemp("", "dionysia-vod-*.mdat")
	if err != nil {
		return 0, fmt.Errorf("building %s: %w", key, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	var payload uint64
	for _, g := range groups {
		for i, s := range g {
			n, err := tracks[i].addSegment(ctx, st, s, bw, payload)
			if err != nil {
				return 0, err
			}
			payload += n
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("building %s: %w", key, err)
	}

	head, err := mp4Header(tracks, payload)
	if err != nil {
		return 0, fmt.Errorf("building %s: %w", key, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("building %s: %w", key, err)
	}
	size := int64(len(head)) + int64(payload)
	if err := st.Put(ctx, key, io.MultiReader(bytes.NewReader(head), tmp), size, "video/mp4"); err != nil {
		return 0, fmt.Errorf("writing %s: %w", key, err)
	}
	return size, nil
}

// newMP4Track reads the inits of a track's segments. The output track takes
// the sample entry (and timescale) most of its segments have, from the first
// init that has it; segments of inits with another one are left out.
func newMP4Track(ctx context.Context, st storage.Store, t *track) (*mp4Track, error) {
	mt := &mp4Track{src: t, inits: map[string]uint32{}, trexes: map[string]*mp4.TrexBox{}, elst: -1}
	type initTrack struct {
		trak  *mp4.TrakBox
		class string // sample entry and timescale
	}
	inits := map[string]initTrack{}
	count := map[string]int{}
	var best string
	for _, s := range t.segs {
		it, done := inits[s.Init]
		if !done {
			trak, trex, err := readInit(ctx, st, s.Init)
			if err != nil {
				return nil, err
			}
			var buf bytes.Buffer
			if err := trak.Mdia.Minf.Stbl.Stsd.Children[0].Encode(&buf); err != nil {
				return nil, fmt.Errorf("init %s: encoding its sample entry: %w", s.Init, err)
			}
			it = initTrack{trak: trak, class: fmt.Sprintf("%d:%x", trak.Mdia.Mdhd.Timescale, buf.Bytes())}
			inits[s.Init] = it
			mt.trexes[s.Init] = trex
		}
		count[it.class]++
		if best == "" || count[it.class] > count[best] {
			best = it.class
		}
	}
	for _, s := range t.segs {
		it := inits[s.Init]
		if it.class != best {
			mt.inits[s.Init] = 0
			continue
		}
		mt.inits[s.Init] = 1
		if mt.trak != nil {
			continue
		}
		mt.trak, mt.scale = it.trak, it.trak.Mdia.Mdhd.Timescale
		if e := it.trak.Edts; e != nil && len(e.Elst) > 0 {
			for _, en := range e.Elst[0].Entries {
				if en.MediaTime >= 0 {
					mt.elst = en.MediaTime
					break
				}
			}
		}
	}
	return mt, nil
}

// readInit decodes a CMAF header of one track with one sample entry and
// returns its trak and trex.
func readInit(ctx context.Context, st storage.Store, key string) (*mp4.TrakBox, *mp4.TrexBox, error) {
	data, err := readAll(ctx, st, key)
	if err != nil {
		return nil, nil, err
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("decoding init %s: %w", key, err)
	}
	if f.Moov == nil || len(f.Moov.Traks) != 1 {
		return nil, nil, fmt.Errorf("init %s: want one track", key)
	}
	trak := f.Moov.Trak
	if trak.Tkhd == nil || trak.Mdia == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Mdhd.Timescale == 0 ||
		trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil ||
		len(trak.Mdia.Minf.Stbl.Stsd.Children) != 1 {
		return nil, nil, fmt.Errorf("init %s: want a track with a timescale and one sample entry", key)
	}
	var trex *mp4.TrexBox
	if f.Moov.Mvex != nil {
		for _, x := range f.Moov.Mvex.Trexs {
			if x.TrackID == trak.Tkhd.TrackID {
				trex = x
			}
		}
	}
	return trak, trex, nil
}

// sampleGroups lists the segments to copy, one per output track each, in
// play order: the first track's segments whose init is compatible and that
// every other track has too (same run and number, compatible init).
func sampleGroups(tracks []*mp4Track) [][]*segment {
	type span struct {
		run    string
		number uint64
	}
	others := make([]map[span]*segment, len(tracks))
	for i, mt := range tracks[1:] {
		m := map[span]*segment{}
		for _, s := range mt.src.segs {
			if mt.inits[s.Init] != 0 {
				m[span{s.run, s.Number}] = s
			}
		}
		others[i+1] = m
	}
	var groups [][]*segment
next:
	for _, s := range tracks[0].src.segs {
		if tracks[0].inits[s.Init] == 0 {
			continue
		}
		g := []*segment{s}
		for _, m := range others[1:] {
			o, ok := m[span{s.run, s.Number}]
			if !ok {
				continue next
			}
			g = append(g, o)
		}
		groups = append(groups, g)
	}
	return groups
}

// addSegment copies one segment's samples to w (at offset in the mdat
// payload) as one chunk, and returns how many bytes it wrote.
func (mt *mp4Track) addSegment(ctx context.Context, st storage.Store, s *segment, w io.Writer, offset uint64) (uint64, error) {
	data, err := readAll(ctx, st, s.Key)
	if err != nil {
		return 0, err
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("decoding segment %s: %w", s.Key, err)
	}
	var written uint64
	var count uint32
	for _, ms := range f.Segments {
		for _, frag := range ms.Fragments {
			samples, err := frag.GetFullSamples(mt.trexes[s.Init])
			if err != nil {
				return 0, fmt.Errorf("segment %s: %w", s.Key, err)
			}
			for _, fs := range samples {
				if uint32(len(fs.Data)) != fs.Size {
					return 0, fmt.Errorf("segment %s: a sample's data is truncated", s.Key)
				}
				if _, err := w.Write(fs.Data); err != nil {
					return 0, fmt.Errorf("buffering %s: %w", s.Key, err)
				}
				written += uint64(fs.Size)
				count++
				mt.sizes = append(mt.sizes, fs.Size)
				mt.durs = append(mt.durs, fs.Dur)
				mt.ctos = append(mt.ctos, fs.CompositionTimeOffset)
				if !mp4.DecodeSampleFlags(fs.Flags).SampleIsNonSync {
					mt.syncs = append(mt.syncs, uint32(len(mt.sizes)))
				}
				mt.dur += uint64(fs.Dur)
			}
		}
	}
	if count > 0 {
		mt.chunks = append(mt.chunks, mp4Chunk{offset: offset, samples: count, sdi: mt.inits[s.Init]})
	}
	return written, nil
}

// mp4Header encodes ftyp, moov and the mdat header for a payload of
// payload bytes that follows them.
func mp4Header(tracks []*mp4Track, payload uint64) ([]byte, error) {
	ftyp := mp4.NewFtyp("isom", 0x200, []string{"isom", "iso2", "avc1", "mp41"})
	mdatHead := 8
	if payload+8 > math.MaxUint32 {
		mdatHead = 16
	}
	for _, large := range []bool{false, true} {
		moov, err := buildMoov(tracks, large)
		if err != nil {
			return nil, err
		}
		base := ftyp.Size() + moov.Size() + uint64(mdatHead)
		if !large && base+payload > math.MaxUint32 {
			continue // the chunk offsets need co64
		}
		for _, mt := range tracks {
			stbl := mt.trak.Mdia.Minf.Stbl
			for i, c := range mt.chunks {
				if large {
					stbl.Co64.ChunkOffset[i] = base + c.offset
				} else {
					stbl.Stco.ChunkOffset[i] = uint32(base + c.offset)
				}
			}
		}
		var buf bytes.Buffer
		if err := ftyp.Encode(&buf); err != nil {
			return nil, err
		}
		if err := moov.Encode(&buf); err != nil {
			return nil, err
		}
		if mdatHead == 16 {
			buf.Write(binary.BigEndian.AppendUint32(nil, 1))
			buf.WriteString("mdat")
			buf.Write(binary.BigEndian.AppendUint64(nil, payload+16))
		} else {
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(payload+8)))
			buf.WriteString("mdat")
		}
		return buf.Bytes(), nil
	}
	panic("unreachable")
}

// buildMoov makes the moov: mvhd and one trak per track, its sample tables
// filled (chunk offsets still relative; mp4Header sets them).
func buildMoov(tracks []*mp4Track, large bool) (*mp4.MoovBox, error) {
	moov := mp4.NewMoovBox()
	mvhd := mp4.CreateMvhd()
	mvhd.Timescale = movieTimescale
	mvhd.NextTrackID = uint32(len(tracks) + 1)
	moov.AddChild(mvhd)
	for i, mt := range tracks {
		trak := mt.trak
		stbl, err := mt.sampleTable(large)
		if err != nil {
			return nil, err
		}
		minf := trak.Mdia.Minf
		for j, c := range minf.Children {
			if c == minf.Stbl {
				minf.Children[j] = stbl
			}
		}
		minf.Stbl = stbl

		movieDur := mt.dur * movieTimescale / uint64(mt.scale)
		// Drop the fragmented file's edit list; write ours (the same start).
		kept := trak.Children[:0]
		for _, c := range trak.Children {
			if c.Type() != "edts" {
				kept = append(kept, c)
			}
		}
		trak.Children, trak.Edts = kept, nil
		if mt.elst > 0 && uint64(mt.elst) < mt.dur {
			edts := &mp4.EdtsBox{}
			edts.AddChild(&mp4.ElstBox{Entries: []mp4.ElstEntry{{
				SegmentDuration:  (mt.dur - uint64(mt.elst)) * movieTimescale / uint64(mt.scale),
				MediaTime:        mt.elst,
				MediaRateInteger: 1,
			}}})
			// edts belongs after tkhd.
			trak.Children = append([]mp4.Box{trak.Children[0], edts}, trak.Children[1:]...)
			trak.Edts = edts
			movieDur = (mt.dur - uint64(mt.elst)) * movieTimescale / uint64(mt.scale)
		}
		trak.Tkhd.TrackID = uint32(i + 1)
		trak.Tkhd.Flags = 0x000003 // enabled, in movie
		trak.Tkhd.Duration = movieDur
		if movieDur > math.MaxUint32 {
			trak.Tkhd.Version = 1
		}
		trak.Mdia.Mdhd.Duration = mt.dur
		if mt.dur > math.MaxUint32 {
			trak.Mdia.Mdhd.Version = 1
		}
		mvhd.Duration = max(mvhd.Duration, movieDur)
		moov.AddChild(trak)
	}
	if mvhd.Duration > math.MaxUint32 {
		mvhd.Version = 1
	}
	return moov, nil
}

// sampleTable builds the stbl of the samples copied so far.
func (mt *mp4Track) sampleTable(large bool) (*mp4.StblBox, error) {
	stbl := mp4.NewStblBox()
	stbl.AddChild(mt.trak.Mdia.Minf.Stbl.Stsd)

	stts := &mp4.SttsBox{}
	for _, d := range mt.durs {
		if n := len(stts.SampleTimeDelta); n > 0 && stts.SampleTimeDelta[n-1] == d {
			stts.SampleCount[n-1]++
		} else {
			stts.SampleCount = append(stts.SampleCount, 1)
			stts.SampleTimeDelta = append(stts.SampleTimeDelta, d)
		}
	}
	stbl.AddChild(stts)

	var counts []uint32
	var offsets []int32
	needed, negative := false, false
	for _, c := range mt.ctos {
		needed = needed || c != 0
		negative = negative || c < 0
		if n := len(offsets); n > 0 && offsets[n-1] == c {
			counts[n-1]++
		} else {
			counts = append(counts, 1)
			offsets = append(offsets, c)
		}
	}
	if needed {
		ctts := &mp4.CttsBox{}
		if negative {
			ctts.Version = 1
		}
		if err := ctts.AddSampleCountsAndOffset(counts, offsets); err != nil {
			return nil, err
		}
		stbl.AddChild(ctts)
	}

	stsc := &mp4.StscBox{}
	for i, c := range mt.chunks {
		if i > 0 && c.samples == mt.chunks[i-1].samples && c.sdi == mt.chunks[i-1].sdi {
			continue
		}
		if err := stsc.AddEntry(uint32(i+1), c.samples, c.sdi); err != nil {
			return nil, err
		}
	}
	stbl.AddChild(stsc)

	stbl.AddChild(&mp4.StszBox{SampleNumber: uint32(len(mt.sizes)), SampleSize: mt.sizes})
	if len(mt.syncs) < len(mt.sizes) {
		stbl.AddChild(&mp4.StssBox{SampleNumber: mt.syncs})
	}
	if large {
		stbl.AddChild(&mp4.Co64Box{ChunkOffset: make([]uint64, len(mt.chunks))})
	} else {
		stbl.AddChild(&mp4.StcoBox{ChunkOffset: make([]uint32, len(mt.chunks))})
	}
	return stbl, nil
}
