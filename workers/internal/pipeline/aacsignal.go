package pipeline

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// aacCheckResult says whether an audio stream can go straight to the
// decoder or must wait for its first buffer.
type aacCheckResult int

const (
	aacOK       aacCheckResult = iota // decodable as announced
	aacRawNoPCE                       // raw AAC, channelConfiguration 0 and no PCE in codec_data
	aacADTS                           // ADTS: its headers tell (aacparse rejects channel configuration 0)
)

// aacFixup is how the audio branch repairs a stream's AAC signalling.
type aacFixup struct {
	caps     string // merged into the stream's caps by a capssetter; "" for none
	noParser bool   // feed the decoder directly: aacparse rejects ADTS with channel configuration 0
}

var (
	reStreamFormat = regexp.MustCompile(`stream-format=\(string\)([\w-]+)`)
	reCodecData    = regexp.MustCompile(`codec_data=\(buffer\)([0-9a-fA-F]+)`)
)

// aacCheck inspects the caps of a new audio pad. An error means the audio
// cannot be decoded at all.
func aacCheck(name, caps string) (aacCheckResult, ascInfo, error) {
	if name != "audio/mpeg" {
		return aacOK, ascInfo{}, nil
	}
	if v := capsInt(reMPEGVer, caps); v != 2 && v != 4 {
		return aacOK, ascInfo{}, nil
	}
	format := ""
	if m := reStreamFormat.FindStringSubmatch(caps); m != nil {
		format = m[1]
	}
	switch format {
	case "adts":
		return aacADTS, ascInfo{}, nil
	case "raw":
		m := reCodecData.FindStringSubmatch(caps)
		if m == nil {
			return aacOK, ascInfo{}, nil
		}
		b, err := hex.DecodeString(m[1])
		if err != nil {
			return aacOK, ascInfo{}, nil
		}
		a, err := parseASC(b)
		if err != nil || a.channelConfig != 0 || a.hasPCE {
			return aacOK, a, nil // the decoder judges
		}
		if a.objectType != 2 || a.sbr || a.sfi >= len(aacRates) {
			return aacOK, a, fmt.Errorf("%w: audio object type %d, sbr %t, sampling frequency index %d", errAACLayout, a.objectType, a.sbr, a.sfi)
		}
		return aacRawNoPCE, a, nil
	}
	return aacOK, ascInfo{}, nil
}

// analyseAAC works out, from the first buffer of a stream aacCheck held
// back, how to decode it. pce, for ADTS, is the element to put in front of
// every raw data block.
func analyseAAC(check aacCheckResult, asc ascInfo, data []byte) (fix aacFixup, pce []byte, l aacLayout, err error) {
	switch check {
	case aacRawNoPCE:
		l, err = layoutFromRawBlock(data, asc.sfi)
		if err != nil {
			return fix, nil, l, err
		}
		cfg := ascWithPCE(asc.sfi, asc.frameLength, l)
		fix.caps = fmt.Sprintf("audio/mpeg,channels=(int)%d,codec_data=(buffer)%s", l.channels(), codecDataHex(cfg))
		return fix, nil, l, nil
	case aacADTS:
		frames, err := splitADTS(data)
		if err != nil {
			return fix, nil, l, err
		}
		f := frames[0]
		if f.channelConfig != 0 {
			return fix, nil, l, nil // aacparse and the decoder know what to do
		}
		if f.objectType != 2 || f.sfi >= len(aacRates) {
			return fix, nil, l, fmt.Errorf("%w: ADTS audio object type %d, sampling frequency index %d", errAACLayout, f.objectType, f.sfi)
		}
		l, err = layoutFromRawBlock(f.block, f.sfi)
		if err != nil {
			return fix, nil, l, err
		}
		fix.caps = fmt.Sprintf("audio/mpeg,channels=(int)%d,rate=(int)%d", l.channels(), aacRates[f.sfi])
		fix.noParser = true
		return fix, pceElement(f.sfi, l), l, nil
	}
	return fix, nil, l, nil
}

var (
	reChannels = regexp.MustCompile(`channels=\(int\)(\d+)`)
	reMask     = regexp.MustCompile(`channel-mask=\(bitmask\)0x([0-9a-fA-F]+)`)
)

// defaultMasks are the channel layouts FFmpeg assumes for a channel count
// when the stream does not say (e.g. AAC 5.1 signalled by a program config
// element, which avdec_aac decodes as 6 unpositioned channels): 3.0, 4.0,
// 5.0, 5.1, 6.1 and 7.1. Their FFmpeg channel order is GStreamer's order for
// the same positions.
var defaultMasks = map[int]uint64{3: 0x7, 4: 0x107, 5: 0x37, 6: 0x3f, 7: 0xd0f, 8: 0xc3f}

// unpositionedMask returns the channel mask to assume for decoded caps with
// more than two channels and no (or a zero) channel mask. audioconvert cannot
// downmix unpositioned channels.
func unpositionedMask(caps string) (uint64, bool) {
	n := capsInt(reChannels, caps)
	if n <= 2 {
		return 0, false
	}
	if m := reMask.FindStringSubmatch(caps); m != nil {
		if v, err := strconv.ParseUint(m[1], 16, 64); err == nil && v != 0 {
			return 0, false
		}
	}
	mask, ok := defaultMasks[n]
	return mask, ok
}

// String lists the layout's elements, e.g. "front SCE0 CPE0, back CPE1 SCE1".
func (l aacLayout) String() string {
	var parts []string
	for _, g := range []struct {
		name  string
		elems []aacElem
	}{{"front", l.front}, {"side", l.side}, {"back", l.back}} {
		if len(g.elems) == 0 {
			continue
		}
		var es []string
		for _, e := range g.elems {
			kind := "SCE"
			if e.cpe {
				kind = "CPE"
			}
			es = append(es, fmt.Sprintf("%s%d", kind, e.tag))
		}
		parts = append(parts, g.name+" "+strings.Join(es, " "))
	}
	for _, tag := range l.lfe {
		parts = append(parts, fmt.Sprintf("LFE%d", tag))
	}
	return strings.Join(parts, ", ")
}
