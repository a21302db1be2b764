package pipeline

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sharedClipASC is the AudioSpecificConfig of the shared 1080p60 clip's AAC:
// channelConfiguration 0 and a PCE (front CPE0 SCE0, side SCE1, back CPE1),
// comment "Lavc58.134.100", then FFmpeg's SBR sync extension.
const sharedClipASC = "118004c844002000c40e4c61766335382e3133342e31303056e500"

func TestParseASC(t *testing.T) {
	tests := []struct {
		name      string
		asc       string
		wantErr   bool
		objType   int
		sfi       int
		chConfig  int
		hasPCE    bool
		wantRate  int
		wantFrame bool
	}{
		{name: "LC 48 kHz stereo", asc: "1190", objType: 2, sfi: 3, chConfig: 2, wantRate: 48000},
		{name: "as mediamtx re-serialises a PCE config", asc: "1180", objType: 2, sfi: 3, wantRate: 48000},
		{name: "shared clip", asc: sharedClipASC, objType: 2, sfi: 3, hasPCE: true, wantRate: 48000},
		{name: "sync extension is no PCE", asc: "118056e500", objType: 2, sfi: 3, wantRate: 48000},
		{name: "main profile", asc: "0980", objType: 1, sfi: 3, wantRate: 48000},
		{name: "960-sample frames", asc: "1194", objType: 2, sfi: 3, chConfig: 2, wantRate: 48000, wantFrame: true},
		{name: "explicit rate", asc: "17805dc010", objType: 2, sfi: 15, chConfig: 2, wantRate: 48000},
		{name: "truncated", asc: "11", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.asc)
			require.NoError(t, err)
			a, err := parseASC(b)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.objType, a.objectType)
			require.Equal(t, tt.sfi, a.sfi)
			require.Equal(t, tt.wantRate, a.rate)
			require.Equal(t, tt.chConfig, a.channelConfig)
			require.Equal(t, tt.hasPCE, a.hasPCE)
			require.Equal(t, tt.wantFrame, a.frameLength)
		})
	}
}

func TestPCERoundTrip(t *testing.T) {
	layouts := map[string]aacLayout{
		"mono":      {front: []aacElem{{tag: 0}}},
		"stereo":    {front: []aacElem{{cpe: true}}},
		"5.1":       {front: []aacElem{{tag: 0}, {cpe: true, tag: 0}}, back: []aacElem{{cpe: true, tag: 1}}, lfe: []uint8{0}},
		"shared":    {front: []aacElem{{cpe: true, tag: 0}, {tag: 0}}, side: []aacElem{{tag: 1}}, back: []aacElem{{cpe: true, tag: 1}}},
		"7.1":       {front: []aacElem{{tag: 0}, {cpe: true, tag: 0}}, side: []aacElem{{cpe: true, tag: 1}}, back: []aacElem{{cpe: true, tag: 2}}, lfe: []uint8{0}},
		"odd tags":  {front: []aacElem{{tag: 15}}, back: []aacElem{{cpe: true, tag: 9}}, lfe: []uint8{3, 7}},
		"hexagonal": {front: []aacElem{{tag: 0}, {cpe: true, tag: 0}}, back: []aacElem{{cpe: true, tag: 1}, {tag: 1}}},
	}
	for name, l := range layouts {
		t.Run(name, func(t *testing.T) {
			asc := ascWithPCE(3, false, l)
			a, err := parseASC(asc)
			require.NoError(t, err)
			require.Equal(t, 0, a.channelConfig)
			require.True(t, a.hasPCE, "ASC %x", asc)
			r := &bitReader{b: asc, pos: 16}
			got, err := readPCE(r)
			require.NoError(t, err)
			require.Equal(t, l.String(), got.String())
			require.Equal(t, len(asc)*8, r.pos, "the PCE ends the ASC, byte-aligned")

			el := pceElement(4, l)
			r = &bitReader{b: el}
			require.Equal(t, 5, r.read(3), "element id")
			got, err = readPCE(r)
			require.NoError(t, err)
			require.Equal(t, l.String(), got.String())
			require.Equal(t, len(el)*8, r.pos)
		})
	}
	// The shared clip's own PCE reads back as what FFmpeg wrote.
	b, err := hex.DecodeString(sharedClipASC)
	require.NoError(t, err)
	got, err := readPCE(&bitReader{b: b, pos: 16})
	require.NoError(t, err)
	require.Equal(t, "front CPE0 SCE0, side SCE1, back CPE1", got.String())
	require.Equal(t, 6, got.channels())
}

// adtsClip generates 0.2 s of ADTS AAC-LC at 48 kHz in layout with FFmpeg.
func adtsClip(t *testing.T, layout string) []byte {
	t.Helper()
	path := generate(t, "adts-"+strings.NewReplacer("(", "", ")", "", ".", "_").Replace(layout)+".aac",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=0.2",
		"-af", "aformat=channel_layouts="+layout, "-c:a", "aac", "-f", "adts")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// stripPCE removes a PCE (and its comment) from the start of a raw data
// block, as mediamtx does when it re-muxes AAC.
func stripPCE(t *testing.T, block []byte) []byte {
	t.Helper()
	if block[0]>>5 != 5 {
		return block
	}
	r := &bitReader{b: block, pos: 3}
	_, err := readPCE(r)
	require.NoError(t, err)
	require.Zero(t, r.pos%8)
	return block[r.pos/8:]
}

func TestLayoutFromRawBlock(t *testing.T) {
	tests := []struct {
		layout   string
		channels int
		want     string // the layout built from the elements (no PCE)
	}{
		{"mono", 1, "front SCE0"},
		{"stereo", 2, "front CPE0"},
		{"5.1", 6, "front SCE0 CPE0, back CPE1, LFE0"},
		{"hexagonal", 6, "front SCE0 CPE0, back CPE1 SCE1"},
		{"7.1", 8, "front SCE0 CPE0, side CPE1, back CPE2, LFE0"},
	}
	for _, tt := range tests {
		t.Run(tt.layout, func(t *testing.T) {
			frames, err := splitADTS(adtsClip(t, tt.layout))
			require.NoError(t, err)
			require.Greater(t, len(frames), 5)
			for i, f := range frames {
				require.Equal(t, 2, f.objectType)
				require.Equal(t, 3, f.sfi)
				l, err := layoutFromRawBlock(stripPCE(t, f.block), f.sfi)
				require.NoError(t, err, "frame %d", i)
				require.Equal(t, tt.channels, l.channels(), "frame %d", i)
				require.Equal(t, tt.want, l.String(), "frame %d", i)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		_, err := layoutFromRawBlock([]byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x11}, 3)
		require.Error(t, err)
	})
	t.Run("empty", func(t *testing.T) {
		_, err := layoutFromRawBlock(nil, 3)
		require.Error(t, err)
	})
}

// TestADTSAddPCE strips the PCE from FFmpeg's hexagonal ADTS (what reaches
// the worker over SRT), checks that FFmpeg cannot decode that, puts the
// recovered PCE back and checks that FFmpeg decodes all six channels.
func TestADTSAddPCE(t *testing.T) {
	frames, err := splitADTS(adtsClip(t, "hexagonal"))
	require.NoError(t, err)
	var broken []byte
	for _, f := range frames {
		block := stripPCE(t, f.block)
		broken = append(broken, adtsHeaderLC(f.sfi, 0, len(block))...)
		broken = append(broken, block...)
	}
	l, err := layoutFromRawBlock(frames[1].block, 3)
	require.NoError(t, err)
	fixed, changed, err := adtsAddPCE(broken, pceElement(3, l))
	require.NoError(t, err)
	require.True(t, changed)
	again, changed, err := adtsAddPCE(fixed, pceElement(3, l))
	require.NoError(t, err)
	require.False(t, changed, "frames that start with a PCE are kept")
	require.Equal(t, fixed, again)

	dir := t.TempDir()
	decode := func(name string, b []byte) (string, error) {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, b, 0o600))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-xerror", "-i", path,
			"-f", "s16le", "-").Output()
		return strings.TrimSpace(string(out)), err
	}
	_, err = decode("broken.aac", broken)
	require.Error(t, err, "FFmpeg decodes ADTS with channel configuration 0 and no PCE")
	pcm, err := decode("fixed.aac", fixed)
	require.NoError(t, err)
	// 0.2 s at 48 kHz, 6 channels of 16 bits, give or take the priming frames.
	require.InDelta(t, 0.2*48000*6*2, float64(len(pcm)), 4*1024*6*2)

	_, _, err = adtsAddPCE([]byte{0xff, 0xf1, 0x00}, nil)
	require.Error(t, err)
}

func FuzzAACParsers(f *testing.F) {
	for _, s := range []string{sharedClipASC, "1190", "1180", "fff14c802fdffcde02004c61", "21100501"} {
		b, err := hex.DecodeString(s)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseASC(b)
		_, _ = layoutFromRawBlock(b, 3)
		if frames, err := splitADTS(b); err == nil {
			for _, fr := range frames {
				require.Equal(t, fr.raw[len(fr.raw)-len(fr.block):], fr.block)
			}
		}
		_, _, _ = adtsAddPCE(b, pceElement(3, aacLayout{front: []aacElem{{cpe: true}}}))
	})
}
