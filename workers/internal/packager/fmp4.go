package packager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Timescales of the CMAF tracks. Video uses the MPEG 90 kHz clock; audio uses
// its sample rate so every AAC frame lasts an integral number of ticks.
const videoTimescale = 90000

// Errors returned for access units that cannot be packaged. The packager drops
// such units (and counts them) instead of failing the pipeline.
var (
	errEmptyAccessUnit = errors.New("empty access unit")
	errNoSliceNALU     = errors.New("access unit has no slice NAL unit")
	errBadSPS          = errors.New("invalid sequence parameter set")
)

// accessUnit is one H.264 access unit converted for an 'avc1' CMAF track:
// length-prefixed NAL units without parameter sets or delimiters.
type accessUnit struct {
	sample []byte   // 4-byte length-prefixed NAL units
	sps    [][]byte // in-band SPS NAL units, if any
	pps    [][]byte // in-band PPS NAL units, if any
	idr    bool     // contains an IDR slice
}

// parseAnnexB splits an Annex-B access unit into NAL units, keeps parameter
// sets aside and returns the remaining NAL units in AVCC (length-prefixed)
// form. Access unit delimiters and filler data are dropped; SPS and PPS go to
// the CMAF header (avcC) instead of the samples.
func parseAnnexB(data []byte) (accessUnit, error) {
	var au accessUnit
	if len(data) == 0 {
		return au, errEmptyAccessUnit
	}
	nalus := avc.ExtractNalusFromByteStream(data)
	if len(nalus) == 0 {
		return au, errNoSliceNALU
	}
	size := 0
	for _, n := range nalus {
		size += 4 + len(n)
	}
	out := make([]byte, 0, size)
	slices := 0
	for _, n := range nalus {
		if len(n) == 0 || n[0]&0x80 != 0 { // empty or forbidden_zero_bit set
			continue
		}
		switch avc.GetNaluType(n[0]) {
		case avc.NALU_SPS:
			au.sps = append(au.sps, n)
			continue
		case avc.NALU_PPS:
			au.pps = append(au.pps, n)
			continue
		case avc.NALU_AUD, avc.NALU_FILL:
			continue
		case avc.NALU_IDR:
			au.idr = true
			slices++
		case avc.NALU_NON_IDR:
			slices++
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(n)))
		out = append(out, n...)
	}
	if slices == 0 {
		return au, errNoSliceNALU
	}
	au.sample = out
	return au, nil
}

// videoParams is what the CMAF header and the manifests need from the SPS.
type videoParams struct {
	codec         string // RFC 6381, e.g. avc1.64001F
	width, height int    // displayed size after cropping
	frameRate     float64
	rec           avc.DecConfRec
}

// parseSPS reads the codec string, size, frame rate (if signalled) and the
// avcC fields from an SPS NAL unit. It uses mediacommon's SPS parser, which
// returns errors on truncated input (mp4ff's loops forever on some malformed
// SPS, found by FuzzParseAnnexB), so mp4ff never parses untrusted parameter sets.
func parseSPS(nalu []byte) (p videoParams, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errBadSPS, r)
		}
	}()
	var sps h264.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return p, fmt.Errorf("%w: %w", errBadSPS, err)
	}
	w, h := sps.Width(), sps.Height()
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return p, fmt.Errorf("%w: size %dx%d", errBadSPS, w, h)
	}
	if sps.ChromaFormatIdc > 3 || sps.BitDepthLumaMinus8 > 7 || sps.BitDepthChromaMinus8 > 7 {
		return p, fmt.Errorf("%w: chroma format %d, bit depth %d/%d", errBadSPS,
			sps.ChromaFormatIdc, sps.BitDepthLumaMinus8+8, sps.BitDepthChromaMinus8+8)
	}
	compat := nalu[2] // constraint_set flags, right after the NAL header and profile_idc
	p = videoParams{
		codec:  fmt.Sprintf("avc1.%02X%02X%02X", sps.ProfileIdc, compat, sps.LevelIdc),
		width:  w,
		height: h,
		rec: avc.DecConfRec{
			AVCProfileIndication: sps.ProfileIdc,
			ProfileCompatibility: compat,
			AVCLevelIndication:   sps.LevelIdc,
			ChromaFormat:         byte(sps.ChromaFormatIdc),
			BitDepthLumaMinus1:   byte(sps.BitDepthLumaMinus8), // mp4ff's name for bit_depth_luma_minus8
			BitDepthChromaMinus1: byte(sps.BitDepthChromaMinus8),
		},
	}
	if p.rec.AVCProfileIndication < 100 { // the chroma fields only exist in High profiles
		p.rec.ChromaFormat = 1
	}
	if fps := sps.FPS(); fps > 0 && fps <= 1000 {
		p.frameRate = fps
	}
	return p, nil
}

// videoInit builds the CMAF header of a video track with an 'avc1' sample
// entry holding the parameter sets.
func videoInit(params videoParams, sps, pps [][]byte) ([]byte, error) {
	init := mp4.CreateEmptyInit()
	trak := init.AddEmptyTrack(videoTimescale, "video", "und")
	rec := params.rec
	rec.SPSnalus, rec.PPSnalus = sps, pps
	avcC := &mp4.AvcCBox{DecConfRec: rec}
	trak.Tkhd.Width = mp4.Fixed32(params.width << 16)
	trak.Tkhd.Height = mp4.Fixed32(params.height << 16)
	trak.Mdia.Minf.Stbl.Stsd.AddChild(mp4.CreateVisualSampleEntryBox("avc1", uint16(params.width), uint16(params.height), avcC))
	return encodeInit(init)
}

// audioInit builds the CMAF header of an AAC track from its AudioSpecificConfig.
func audioInit(asc []byte, sampleRate, channels int) ([]byte, error) {
	init := mp4.CreateEmptyInit()
	trak := init.AddEmptyTrack(uint32(sampleRate), "audio", "und")
	esds := mp4.CreateEsdsBox(asc)
	rate := sampleRate
	if rate > 0xFFFF { // the 16.16 field of the sample entry cannot hold it; mdhd has the real rate
		rate = 0
	}
	entry := mp4.CreateAudioSampleEntryBox("mp4a", uint16(channels), 16, uint16(rate), esds)
	trak.Mdia.Minf.Stbl.Stsd.AddChild(entry)
	return encodeInit(init)
}

func encodeInit(init *mp4.InitSegment) ([]byte, error) {
	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		return nil, fmt.Errorf("encoding init segment: %w", err)
	}
	return buf.Bytes(), nil
}

// aacCodec returns the RFC 6381 codec string (mp4a.40.<audio object type>) and
// the channel configuration of an AudioSpecificConfig.
func aacCodec(asc []byte) (codec string, channels int, err error) {
	if len(asc) < 2 {
		return "", 0, fmt.Errorf("audio specific config too short: %d bytes", len(asc))
	}
	aot := int(asc[0] >> 3)
	freqIdx := int(asc[0]&0x07)<<1 | int(asc[1]>>7)
	chanCfg := int(asc[1]>>3) & 0x0F
	if aot == 31 { // escape: 6 more bits
		if len(asc) < 3 {
			return "", 0, fmt.Errorf("audio specific config too short for extended object type")
		}
		aot = 32 + (int(asc[0]&0x07)<<3 | int(asc[1]>>5))
		freqIdx, chanCfg = -1, 0
	}
	if aot == 0 {
		return "", 0, fmt.Errorf("audio object type 0 is invalid")
	}
	if freqIdx == 15 { // explicit 24-bit frequency precedes the channel configuration
		if len(asc) < 5 {
			return "", 0, fmt.Errorf("audio specific config too short for explicit frequency")
		}
		chanCfg = int(asc[4]>>3) & 0x0F
	}
	switch chanCfg {
	case 7:
		channels = 8
	default:
		channels = chanCfg
	}
	return fmt.Sprintf("mp4a.40.%d", aot), channels, nil
}

// fragSample is one sample ready for a CMAF fragment, in track timescale.
type fragSample struct {
	decode uint64
	dur    uint32
	cto    int32
	sync   bool
	data   []byte
}

// encodeSegment writes one CMAF media segment (styp + moof + mdat) holding
// samples of track 1. seq is the moof sequence number.
func encodeSegment(seq uint32, samples []fragSample) ([]byte, error) {
	seg := mp4.NewMediaSegment()
	frag, err := mp4.CreateFragment(seq, 1)
	if err != nil {
		return nil, fmt.Errorf("creating fragment: %w", err)
	}
	seg.AddFragment(frag)
	size := 0
	for _, s := range samples {
		flags := mp4.NonSyncSampleFlags | mp4.SampleDependsOn1
		if s.sync {
			flags = mp4.SyncSampleFlags
		}
		frag.AddFullSample(mp4.FullSample{
			Sample:     mp4.NewSample(flags, s.dur, uint32(len(s.data)), s.cto),
			DecodeTime: s.decode,
			Data:       s.data,
		})
		size += len(s.data)
	}
	var buf bytes.Buffer
	buf.Grow(size + 1024)
	if err := seg.Encode(&buf); err != nil {
		return nil, fmt.Errorf("encoding media segment: %w", err)
	}
	return buf.Bytes(), nil
}
