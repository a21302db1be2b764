package pipeline

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/Comcast/gaad"
)

// AAC whose channels are signalled by a program config element (PCE) may
// reach the worker without that PCE: mediamtx re-serialises the
// AudioSpecificConfig as two bytes with channelConfiguration 0, in the FLV
// codec_data (RTMP) and in every ADTS header (SRT). No decoder can open such
// a stream (FFmpeg: "decode_pce: Input buffer exhausted"), and aacparse
// does not parse ADTS with channel configuration 0 at all. The channel
// elements are still in every raw data block, so the pipeline parses the
// first block (with github.com/Comcast/gaad, which walks the whole
// bitstream syntax, Huffman-coded spectral data included), builds a PCE
// listing those elements and gives it back to the decoder: in the
// codec_data for raw AAC, in front of every raw data block for ADTS.
//
// A PCE rather than a channelConfiguration: FFmpeg maps the elements of an
// indexed configuration by position (configuration 6 expects SCE, CPE, CPE,
// LFE in that order) and rejects any other order, while a PCE maps them by
// element type and instance tag.

// errAACLayout means an AAC stream's channel layout cannot be recovered.
var errAACLayout = errors.New("cannot decode AAC (channel configuration 0 without a program config element)")

// aacElem is one channel element of a PCE list: a channel pair (CPE) or a
// single channel (SCE), by instance tag.
type aacElem struct {
	cpe bool
	tag uint8
}

// aacLayout is the channel elements of an AAC stream, placed the way a PCE
// places them.
type aacLayout struct {
	front, side, back []aacElem
	lfe               []uint8 // LFE element tags
}

func (l aacLayout) channels() int {
	n := len(l.lfe)
	for _, list := range [][]aacElem{l.front, l.side, l.back} {
		for _, e := range list {
			n++
			if e.cpe {
				n++
			}
		}
	}
	return n
}

// maxAACChannels is the most channels the pipeline downmixes (7.1).
const maxAACChannels = 8

// ascInfo is what the pipeline needs of an AudioSpecificConfig.
type ascInfo struct {
	objectType    int // 2: AAC-LC
	sfi           int // sampling frequency index; 15: explicit rate
	rate          int // Hz
	channelConfig int
	sbr           bool // explicit SBR/PS signalling (HE-AAC)
	frameLength   bool // 960-sample frames
	hasPCE        bool // a complete PCE follows (channelConfig 0)
}

var aacRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// bitReader reads big-endian bit fields; reads past the end set err.
type bitReader struct {
	b   []byte
	pos int // in bits
	err error
}

func (r *bitReader) read(n int) int {
	v := 0
	for range n {
		if r.pos >= len(r.b)*8 {
			r.err = errors.New("truncated")
			return 0
		}
		v = v<<1 | int(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bitReader) align() { r.pos = (r.pos + 7) / 8 * 8 }

// parseASC reads an AudioSpecificConfig far enough to tell whether its
// channels are known: the header, the GASpecificConfig of AAC-LC and, with
// channelConfiguration 0, whether a whole PCE follows.
func parseASC(b []byte) (ascInfo, error) {
	r := &bitReader{b: b}
	objectType := func() int {
		t := r.read(5)
		if t == 31 {
			t = 32 + r.read(6)
		}
		return t
	}
	rate := func() (int, int) {
		sfi := r.read(4)
		if sfi == 15 {
			return sfi, r.read(24)
		}
		if sfi < len(aacRates) {
			return sfi, aacRates[sfi]
		}
		return sfi, 0
	}
	var a ascInfo
	a.objectType = objectType()
	a.sfi, a.rate = rate()
	a.channelConfig = r.read(4)
	if a.objectType == 5 || a.objectType == 29 {
		a.sbr = true
		_, _ = rate()
		a.objectType = objectType()
	}
	if r.err != nil {
		return a, fmt.Errorf("parsing AudioSpecificConfig %x: %w", b, r.err)
	}
	if a.objectType != 2 || a.rate == 0 {
		return a, nil // not AAC-LC: the fields below are not read
	}
	a.frameLength = r.read(1) == 1
	if r.read(1) == 1 { // dependsOnCoreCoder
		r.read(14)
	}
	r.read(1) // extensionFlag
	if a.channelConfig == 0 && r.err == nil {
		start := r.pos
		_, r.err = readPCE(r)
		a.hasPCE = r.err == nil && r.pos > start
	}
	return a, nil
}

// readPCE reads a program_config_element (ISO 14496-3 table 4.2) without
// its 3-bit element id.
func readPCE(r *bitReader) (aacLayout, error) {
	var l aacLayout
	r.read(4) // element_instance_tag
	r.read(2) // object_type
	r.read(4) // sampling_frequency_index
	nf, ns, nb := r.read(4), r.read(4), r.read(4)
	nl, na, nc := r.read(2), r.read(3), r.read(4)
	for range 2 { // mono, stereo mixdown
		if r.read(1) == 1 {
			r.read(4)
		}
	}
	if r.read(1) == 1 { // matrix mixdown
		r.read(3)
	}
	elems := func(n int) []aacElem {
		out := make([]aacElem, n)
		for i := range out {
			out[i] = aacElem{cpe: r.read(1) == 1, tag: uint8(r.read(4))}
		}
		return out
	}
	l.front, l.side, l.back = elems(nf), elems(ns), elems(nb)
	for range nl {
		l.lfe = append(l.lfe, uint8(r.read(4)))
	}
	r.read(4 * na)
	r.read(5 * nc)
	r.align()
	r.read(8 * r.read(8)) // comment
	if r.err != nil {
		return l, fmt.Errorf("parsing program config element: %w", r.err)
	}
	return l, nil
}

// bitWriter writes big-endian bit fields.
type bitWriter struct {
	b   []byte
	pos int // in bits
}

func (w *bitWriter) write(v, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.pos%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>i&1 == 1 {
			w.b[len(w.b)-1] |= 0x80 >> (w.pos % 8)
		}
		w.pos++
	}
}

// align pads to a byte boundary, counted from the start of the buffer.
func (w *bitWriter) align() { w.pos = len(w.b) * 8 }

// writePCE writes l as a program_config_element of AAC-LC at sampling
// frequency index sfi, without its 3-bit element id, and no comment.
func writePCE(w *bitWriter, l aacLayout, sfi int) {
	w.write(0, 4) // element_instance_tag
	w.write(1, 2) // object_type: AAC-LC
	w.write(sfi, 4)
	w.write(len(l.front), 4)
	w.write(len(l.side), 4)
	w.write(len(l.back), 4)
	w.write(len(l.lfe), 2)
	w.write(0, 3) // assoc data elements
	w.write(0, 4) // valid cc elements
	w.write(0, 3) // no mono, stereo or matrix mixdown
	for _, list := range [][]aacElem{l.front, l.side, l.back} {
		for _, e := range list {
			if e.cpe {
				w.write(1, 1)
			} else {
				w.write(0, 1)
			}
			w.write(int(e.tag), 4)
		}
	}
	for _, tag := range l.lfe {
		w.write(int(tag), 4)
	}
	w.align()
	w.write(0, 8) // comment_field_bytes
}

// ascWithPCE returns the AudioSpecificConfig of AAC-LC at a standard
// sampling frequency index with channelConfiguration 0 and l as its PCE.
func ascWithPCE(sfi int, frameLength bool, l aacLayout) []byte {
	w := &bitWriter{}
	w.write(2, 5) // AAC-LC
	w.write(sfi, 4)
	w.write(0, 4) // channelConfiguration: see the PCE
	if frameLength {
		w.write(1, 1)
	} else {
		w.write(0, 1)
	}
	w.write(0, 1) // dependsOnCoreCoder
	w.write(0, 1) // extensionFlag
	writePCE(w, l, sfi)
	return w.b
}

// pceElement returns l as a complete PCE syntactic element (id 5), to put
// at the start of a raw data block that begins on a byte boundary.
func pceElement(sfi int, l aacLayout) []byte {
	w := &bitWriter{}
	w.write(5, 3)
	writePCE(w, l, sfi)
	return w.b
}

// layoutFromRawBlock finds the channel elements of one AAC-LC raw data
// block at sampling frequency index sfi. A PCE in the block is used as is;
// otherwise the elements are placed the usual way: the first SCE is the
// front centre and the first CPE the front pair; then a second CPE is the
// back pair (with three CPEs, the side pair and then the back pair); further
// SCEs are back centres; LFEs are LFEs.
func layoutFromRawBlock(block []byte, sfi int) (l aacLayout, err error) {
	defer func() {
		// gaad indexes its tables with values read from the stream: a
		// corrupt block must not take the worker down.
		if r := recover(); r != nil {
			err = fmt.Errorf("parsing AAC raw data block: %v", r)
		}
	}()
	frame := append(adtsHeaderLC(sfi, 0, len(block)), block...)
	a, err := gaad.ParseADTS(frame)
	if err != nil {
		return l, fmt.Errorf("parsing AAC raw data block: %w", err)
	}
	if len(a.Coupling_channel_elements) > 0 {
		return l, fmt.Errorf("%w: coupling channel elements are not supported", errAACLayout)
	}
	if len(a.Program_config_elements) > 0 {
		pce := a.Program_config_elements[0]
		for i, tag := range pce.Front_element_tag_select {
			l.front = append(l.front, aacElem{cpe: pce.Front_element_is_cpe[i], tag: tag})
		}
		for i, tag := range pce.Side_element_tag_select {
			l.side = append(l.side, aacElem{cpe: pce.Side_element_is_cpe[i], tag: tag})
		}
		for i, tag := range pce.Back_element_tag_select {
			l.back = append(l.back, aacElem{cpe: pce.Back_element_is_cpe[i], tag: tag})
		}
		l.lfe = slices.Clone(pce.Lfe_element_tag_select)
	} else {
		var sces, cpes []uint8
		for _, e := range a.Single_channel_elements {
			sces = append(sces, e.Element_instance_tag)
		}
		for _, e := range a.Channel_pair_elements {
			cpes = append(cpes, e.Element_instance_tag)
		}
		for _, e := range a.Lfe_channel_elements {
			l.lfe = append(l.lfe, e.Element_instance_tag)
		}
		slices.Sort(sces)
		slices.Sort(cpes)
		slices.Sort(l.lfe)
		if len(sces) > 0 {
			l.front = append(l.front, aacElem{tag: sces[0]})
			sces = sces[1:]
		}
		if len(cpes) > 0 {
			l.front = append(l.front, aacElem{cpe: true, tag: cpes[0]})
			cpes = cpes[1:]
		}
		if len(cpes) > 1 {
			l.side = append(l.side, aacElem{cpe: true, tag: cpes[0]})
			cpes = cpes[1:]
		}
		for _, tag := range cpes {
			l.back = append(l.back, aacElem{cpe: true, tag: tag})
		}
		for _, tag := range sces {
			l.back = append(l.back, aacElem{tag: tag})
		}
	}
	n := l.channels()
	switch {
	case n == 0:
		return l, fmt.Errorf("%w: no channel element in the first frame", errAACLayout)
	case n > maxAACChannels || len(l.front) > 15 || len(l.side) > 15 || len(l.back) > 15 || len(l.lfe) > 3:
		return l, fmt.Errorf("%w: %d channels (at most %d are supported)", errAACLayout, n, maxAACChannels)
	}
	return l, nil
}

// adtsHeaderLC is a 7-byte ADTS header (no CRC) of AAC-LC for a raw data
// block of n bytes.
func adtsHeaderLC(sfi, channelConfig, n int) []byte {
	l := n + 7
	return []byte{
		0xFF, 0xF1,
		byte(1<<6 | sfi<<2 | channelConfig>>2),
		byte((channelConfig&3)<<6 | l>>11),
		byte(l >> 3),
		byte(l&7<<5 | 0x1F),
		0xFC,
	}
}

// adtsFrame is one ADTS frame of a buffer.
type adtsFrame struct {
	sfi, channelConfig, objectType int
	header                         int // header length: 7, or 9 with a CRC
	raw, block                     []byte
}

// splitADTS splits buf into its ADTS frames (one raw data block each).
func splitADTS(buf []byte) ([]adtsFrame, error) {
	var out []adtsFrame
	for len(buf) > 0 {
		if len(buf) < 7 || buf[0] != 0xFF || buf[1]&0xF6 != 0xF0 {
			return nil, errors.New("not an ADTS frame")
		}
		f := adtsFrame{
			objectType:    int(buf[2]>>6) + 1,
			sfi:           int(buf[2] >> 2 & 0xF),
			channelConfig: int(buf[2]&1)<<2 | int(buf[3]>>6),
			header:        7,
		}
		if buf[1]&1 == 0 {
			f.header = 9
		}
		n := int(buf[3]&3)<<11 | int(buf[4])<<3 | int(buf[5])>>5
		if buf[6]&3 != 0 {
			return nil, errors.New("ADTS frames of several raw data blocks are not supported")
		}
		if n < f.header || n > len(buf) {
			return nil, fmt.Errorf("ADTS frame of %d bytes in %d", n, len(buf))
		}
		f.raw, f.block = buf[:n], buf[f.header:n]
		out = append(out, f)
		buf = buf[n:]
	}
	return out, nil
}

// adtsAddPCE rewrites the ADTS frames of buf that have channel
// configuration 0 and no PCE so that pce (from pceElement) starts their raw
// data block (AAC-LC only); their CRC, if any, is dropped. changed is false when no frame
// needed it.
func adtsAddPCE(buf, pce []byte) (out []byte, changed bool, err error) {
	frames, err := splitADTS(buf)
	if err != nil {
		return nil, false, err
	}
	for _, f := range frames {
		if f.channelConfig == 0 && len(f.block) > 0 && f.block[0]>>5 != 5 {
			changed = true
		}
	}
	if !changed {
		return buf, false, nil
	}
	out = make([]byte, 0, len(buf)+len(frames)*len(pce))
	for _, f := range frames {
		if f.channelConfig != 0 || len(f.block) == 0 || f.block[0]>>5 == 5 {
			out = append(out, f.raw...)
			continue
		}
		n := len(pce) + len(f.block)
		if n+7 >= 1<<13 {
			return nil, false, fmt.Errorf("ADTS frame of %d bytes too long", n+7)
		}
		out = append(out, adtsHeaderLC(f.sfi, 0, n)...)
		out = append(out, pce...)
		out = append(out, f.block...)
	}
	return out, true, nil
}

// codecDataHex formats b for a caps string: codec_data=(buffer)<hex>.
func codecDataHex(b []byte) string { return hex.EncodeToString(b) }
