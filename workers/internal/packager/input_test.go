package packager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/workers/internal/media"
)

func TestPackagerRejectsBadCalls(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{})
	au := c.vAUs[0][0]

	require.ErrorIs(t, b.p.WriteVideo(0, au), ErrNoTracks)
	require.ErrorIs(t, b.p.WriteAudio(c.frames[0]), ErrNoTracks)
	for _, tc := range []struct {
		name  string
		video []media.VideoTrack
		audio *media.AudioTrack
		want  error
	}{
		{"nothing", nil, nil, nil},
		{"path traversal", []media.VideoTrack{{Name: "../x"}}, nil, ErrInvalidName},
		{"reserved audio name", []media.VideoTrack{{Name: "audio"}}, nil, ErrInvalidName},
		{"duplicate", []media.VideoTrack{{Name: "a"}, {Name: "a"}}, nil, ErrInvalidName},
		{"bad audio config", nil, &media.AudioTrack{SampleRate: 48000, Config: []byte{0}}, nil},
		{"bad sample rate", nil, &media.AudioTrack{SampleRate: 0, Config: c.audio.Config}, nil},
	} {
		err := b.p.Tracks(tc.video, tc.audio)
		require.Error(t, err, tc.name)
		if tc.want != nil {
			require.ErrorIs(t, err, tc.want, tc.name)
		}
	}
	require.Zero(t, b.p.Stats().Runs, "a rejected Tracks call starts no run")

	require.NoError(t, b.p.Tracks(c.video[:1], nil))
	require.ErrorIs(t, b.p.WriteVideo(1, au), ErrBadTrack)
	require.ErrorIs(t, b.p.WriteVideo(-1, au), ErrBadTrack)
	require.Error(t, b.p.WriteAudio(c.frames[0]), "no audio track in this run")
}

func TestPackagerDropsMalformedInput(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{})
	require.NoError(t, b.p.Tracks(c.video[:1], nil))
	aus := c.vAUs[0]
	key := aus[0]
	require.True(t, key.Keyframe)

	bad := []media.VideoAU{
		{PTS: 0, DTS: 0, Keyframe: true},                                                                                    // empty
		{PTS: 0, DTS: 0, Keyframe: true, Data: []byte{0xde, 0xad, 0xbe, 0xef}},                                              // no start code
		{PTS: 0, DTS: 0, Keyframe: true, Data: []byte{0, 0, 1, 0x67, 0, 0, 1, 0x68}},                                        // parameter sets only
		{PTS: 0, DTS: 0, Keyframe: false, Data: aus[1].Data},                                                                // before the first keyframe
		{PTS: 0, DTS: 0, Keyframe: true, Data: aus[60].Data[strings.Index(string(aus[60].Data), "\x00\x00\x00\x01\x65"):]},  // IDR without SPS/PPS
		{PTS: time.Second, DTS: 2 * time.Second, Keyframe: true, Data: key.Data},                                            // PTS before DTS
		{PTS: 0, DTS: 0, Keyframe: true, Data: []byte{0, 0, 1, 0x67, 0xff, 0xff, 0, 0, 1, 0x68, 0xee, 0, 0, 1, 0x65, 0x88}}, // garbage SPS
	}
	for i, au := range bad {
		require.NoError(t, b.p.WriteVideo(0, au), "bad input %d is dropped, not an error", i)
	}
	require.EqualValues(t, len(bad), b.p.Stats().Tracks[0].Dropped)
	require.Zero(t, b.p.Stats().Tracks[0].Segments)

	// Valid input still packages, and a repeated DTS is dropped.
	for i, au := range aus {
		require.NoError(t, b.p.WriteVideo(0, au))
		if i == 10 {
			require.NoError(t, b.p.WriteVideo(0, au))
		}
	}
	require.NoError(t, b.p.Close(true))
	st := b.p.Stats().Tracks[0]
	require.EqualValues(t, len(bad)+1, st.Dropped)
	require.EqualValues(t, 6, st.Segments)
	pl := readMediaPlaylist(t, filepath.Join(b.dir, st.Name, MediaPlaylistName))
	require.Len(t, playlistSegments(pl), 6)
}

func TestPackagerAudioOnly(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{})
	require.NoError(t, b.p.Tracks(nil, c.audio))
	for _, f := range c.frames {
		require.NoError(t, b.p.WriteAudio(f))
	}
	require.NoError(t, b.p.Close(true))
	mp := readMasterPlaylist(t, filepath.Join(b.dir, MultivariantName))
	require.Len(t, mp.Variants, 1)
	require.Equal(t, "audio/index.m3u8", mp.Variants[0].URI)
	require.Equal(t, "mp4a.40.2", mp.Variants[0].Codecs)
	segs := playlistSegments(readMediaPlaylist(t, filepath.Join(b.dir, AudioName, MediaPlaylistName)))
	require.Len(t, segs, 6)
	for i, s := range segs[:len(segs)-1] {
		require.InDelta(t, 2.0, s.dur, 0.2, "segment %d", i)
	}
	require.True(t, ffprobeJSON(t, filepath.Join(b.dir, MultivariantName)).hasAudio("aac"))
	require.True(t, ffprobeJSON(t, filepath.Join(b.dir, ManifestName)).hasAudio("aac"))
}

func TestPackagerNumbersAfterFailover(t *testing.T) {
	t.Parallel()
	c := loadContent(t, defaultSpec)
	b := setup(t, Config{})
	// A previous worker left segments numbered above the wall-clock number.
	high := uint64(newFakeClock().Now().Unix()/2) + 100
	require.NoError(t, os.MkdirAll(filepath.Join(b.dir, "360p"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(b.dir, "360p", "897631300.m4s"), []byte("old"), 0o644))
	require.Equal(t, uint64(897631300), high)
	p, err := New(Config{Dir: b.dir, Clock: b.clock.Now})
	require.NoError(t, err)
	require.NoError(t, p.Tracks(c.video, c.audio))
	feed(t, p, c.interleaved(0)[:200])
	require.NoError(t, p.Close(false))
	require.Greater(t, p.Stats().Tracks[0].LastNumber, high)
}

func TestRemoveAfter(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "stream")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "360p"), 0o755))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, RemoveAfter(ctx, dir, time.Hour), context.Canceled)
	require.DirExists(t, dir)

	require.NoError(t, RemoveAfter(context.Background(), dir, 10*time.Millisecond))
	require.NoDirExists(t, dir)
	require.Error(t, RemoveAfter(context.Background(), "/", 0))
	require.Error(t, RemoveAfter(context.Background(), "", 0))
}

func TestPackagerRemove(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	require.Error(t, b.p.Remove(), "still open")
	require.NoError(t, b.p.Close(false))
	require.NoError(t, b.p.Remove())
	require.NoDirExists(t, b.dir)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := New(Config{})
	require.Error(t, err)
	_, err = New(Config{Dir: t.TempDir(), DisableHLS: true, DisableDASH: true})
	require.Error(t, err)
	_, err = New(Config{Dir: t.TempDir(), SegmentDuration: time.Millisecond})
	require.Error(t, err)
	require.NoError(t, Config{Dir: "x"}.withDefaults().Validate())
}

func TestAACCodec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		asc      []byte
		codec    string
		channels int
	}{
		{[]byte{0x11, 0x90}, "mp4a.40.2", 2},             // AAC-LC 48 kHz stereo
		{[]byte{0x12, 0x08}, "mp4a.40.2", 1},             // AAC-LC 44.1 kHz mono
		{[]byte{0x2b, 0x92, 0x08, 0x00}, "mp4a.40.5", 2}, // HE-AAC
	} {
		codec, ch, err := aacCodec(tc.asc)
		require.NoError(t, err)
		require.Equal(t, tc.codec, codec)
		require.Equal(t, tc.channels, ch)
	}
	for _, bad := range [][]byte{nil, {0x10}, {0x00, 0x00}, {0xf8}} {
		_, _, err := aacCodec(bad)
		require.Error(t, err)
	}
}

// FuzzParseAnnexB feeds arbitrary bytes to the Annex-B and SPS parsers.
func FuzzParseAnnexB(f *testing.F) {
	c := loadContent(f, defaultSpec)
	for _, au := range c.vAUs[1][:3] {
		f.Add(au.Data)
	}
	f.Add([]byte{0, 0, 1, 0x67, 0x64, 0, 0x1e, 0xac, 0, 0, 1, 0x68, 0xee, 0, 0, 0, 1, 0x65, 0x88})
	f.Fuzz(func(t *testing.T, data []byte) {
		au, err := parseAnnexB(data)
		if err != nil {
			return
		}
		for _, sps := range au.sps {
			params, err := parseSPS(sps)
			if err != nil {
				continue
			}
			init, err := videoInit(params, au.sps, au.pps)
			require.NoError(t, err)
			require.NotEmpty(t, init)
		}
	})
}

// FuzzWriteVideo writes a real keyframe and then arbitrary bytes as access
// units: nothing may panic and only disk errors may be returned.
func FuzzWriteVideo(f *testing.F) {
	c := loadContent(f, defaultSpec)
	aus := c.vAUs[1]
	for _, au := range aus[:3] {
		f.Add(au.Data, au.Keyframe, int64(au.DTS), int64(au.PTS-au.DTS))
	}
	f.Add([]byte{}, true, int64(0), int64(0))
	f.Add([]byte{0, 0, 1}, false, int64(-1), int64(5))
	f.Fuzz(func(t *testing.T, data []byte, keyframe bool, dts, ptsDelta int64) {
		p, err := New(Config{Dir: t.TempDir(), SegmentDuration: 100 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, p.Tracks(c.video[1:2], nil))
		require.NoError(t, p.WriteVideo(0, aus[0]))
		for i := range 3 {
			au := media.VideoAU{DTS: time.Duration(dts) + time.Duration(i)*time.Second, Keyframe: keyframe, Data: data}
			au.PTS = au.DTS + time.Duration(ptsDelta)
			if err := p.WriteVideo(0, au); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("WriteVideo: %v", err)
			}
		}
		require.NoError(t, p.Close(true))
	})
}
