package packager

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

const (
	hlsVersion   = 7
	audioGroupID = "audio"
)

// writeMediaPlaylist rewrites a rendition's HLS media playlist from its window.
func (p *Packager) writeMediaPlaylist(rd *rendition) error {
	if p.cfg.DisableHLS || len(rd.segs) == 0 || p.held {
		return nil
	}
	listed := rd.window(p.cfg.WindowSize)
	pl, err := m3u8.NewMediaPlaylist(uint(len(listed)), uint(len(listed)))
	if err != nil {
		return fmt.Errorf("building media playlist: %w", err)
	}
	pl.SetVersion(hlsVersion)
	pl.SetIndependentSegments(true)
	pl.SeqNo = listed[0].seq()
	pl.DiscontinuitySeq = rd.discontinuitySequence(p.cfg.WindowSize)
	pl.SetTargetDuration(uint(rd.target))
	for _, s := range listed {
		seg := &m3u8.MediaSegment{
			URI:             s.file(),
			Duration:        s.duration().Seconds(),
			Discontinuity:   s.disc,
			Map:             &m3u8.Map{URI: s.init},
			ProgramDateTime: p.ast.Add(s.startTime()).UTC().Truncate(time.Millisecond),
		}
		if err := pl.AppendSegment(seg); err != nil {
			return fmt.Errorf("building media playlist: %w", err)
		}
	}
	pl.Closed = rd.ended
	if err := WriteFileAtomic(filepath.Join(p.cfg.Dir, rd.name, MediaPlaylistName), pl.Encode().Bytes()); err != nil {
		return fmt.Errorf("writing media playlist: %w", err)
	}
	rd.written = true
	return nil
}

// writeMultivariant writes the multivariant playlist of the current run once
// every one of its tracks has a media playlist on disk, and rewrites it when a
// value (measured bandwidth, codecs) changed.
func (p *Packager) writeMultivariant() error {
	r := p.cur
	if p.cfg.DisableHLS || r == nil {
		return nil
	}
	for _, tr := range r.tracks() {
		if !tr.rend.written {
			return nil // a player must never see a variant it cannot fetch yet
		}
	}
	mp := m3u8.NewMasterPlaylist()
	var (
		alts                []*m3u8.Alternative
		audioPeak, audioAvg int
		audioCodec          string
	)
	if r.audio != nil {
		ad := r.audio.rend
		audioCodec = ad.desc.codec
		fallback := ad.desc.bitrate
		if fallback <= 0 {
			fallback = 128_000
		}
		audioPeak, audioAvg = ad.bandwidth(fallback, fallback)
		alts = []*m3u8.Alternative{{
			Type:       "AUDIO",
			GroupId:    audioGroupID,
			Name:       "audio",
			Default:    true,
			Autoselect: true,
			URI:        AudioName + "/" + MediaPlaylistName,
			Channels:   &m3u8.Channels{Amount: ad.desc.channels},
		}}
	}
	if len(r.video) == 0 {
		mp.Append(AudioName+"/"+MediaPlaylistName, nil, m3u8.VariantParams{
			Bandwidth:        uint32(audioPeak),
			AverageBandwidth: uint32(audioAvg),
			Codecs:           audioCodec,
		})
	}
	for _, tr := range r.video {
		rd := tr.rend
		fallbackPeak := rd.desc.maxBitrate
		if fallbackPeak <= 0 {
			fallbackPeak = rd.desc.bitrate
		}
		peak, avg := rd.bandwidth(fallbackPeak, rd.desc.bitrate)
		params := m3u8.VariantParams{
			Bandwidth:        uint32(peak + audioPeak),
			AverageBandwidth: uint32(avg + audioAvg),
			Codecs:           rd.desc.codec,
			Resolution:       strconv.Itoa(rd.desc.width) + "x" + strconv.Itoa(rd.desc.height),
			FrameRate:        rd.desc.frameRate,
		}
		if r.audio != nil {
			params.Codecs += "," + audioCodec
			params.Audio = audioGroupID
			params.Alternatives = alts
		}
		mp.Append(rd.name+"/"+MediaPlaylistName, nil, params)
	}
	mp.SetVersion(hlsVersion)
	mp.SetIndependentSegments(true)
	data := mp.Encode().Bytes()
	if bytes.Equal(data, p.lastMaster) {
		return nil
	}
	if err := WriteFileAtomic(filepath.Join(p.cfg.Dir, MultivariantName), data); err != nil {
		return fmt.Errorf("writing multivariant playlist: %w", err)
	}
	p.lastMaster = bytes.Clone(data)
	return nil
}

// endEarlierPlaylists appends EXT-X-ENDLIST to the media playlists in dir that
// lack it: the output of an earlier packager of the stream (a worker that lost
// the stream and got it back, whose new run ended before any output). Its
// DASH manifest stays dynamic: its players see the stream end when the origin
// stops serving it.
func endEarlierPlaylists(dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*", MediaPlaylistName))
	if err != nil {
		return err
	}
	var errs []error
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if bytes.Contains(b, []byte("#EXT-X-ENDLIST")) {
			continue
		}
		b = append(bytes.TrimRight(b, "\n"), []byte("\n#EXT-X-ENDLIST\n")...)
		errs = append(errs, WriteFileAtomic(path, b))
	}
	return errors.Join(errs...)
}
