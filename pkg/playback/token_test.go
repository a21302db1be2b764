package playback_test

import (
	"crypto/rand"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func key(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(b)
}

func TestMintVerify(t *testing.T) {
	t.Parallel()
	s, err := playback.ParseKeys("k1:" + key(t))
	require.NoError(t, err)
	stream := uuid.NewString()
	now := time.Now()

	tok, err := s.Mint(stream, time.Hour, "")
	require.NoError(t, err)
	require.Less(t, len(tok), 120)
	require.NoError(t, s.Verify(tok, stream, "203.0.113.9", now))
	require.NoError(t, s.Verify(tok, strings.ToUpper(stream), "", now))

	require.ErrorIs(t, s.Verify("", stream, "", now), playback.ErrMissing)
	require.ErrorIs(t, s.Verify(tok, uuid.NewString(), "", now), playback.ErrWrongStream)
	require.ErrorIs(t, s.Verify(tok, stream, "", now.Add(time.Hour+time.Second)), playback.ErrExpired)
	require.ErrorIs(t, s.Verify("garbage", stream, "", now), playback.ErrMalformed)

	// Tampering with any part of the token breaks it.
	parts := strings.Split(tok, ".")
	for i := range parts {
		b := []byte(parts[i])
		j := len(b) / 2
		if b[j] == 'A' {
			b[j] = 'B'
		} else {
			b[j] = 'A'
		}
		tampered := append([]string{}, parts...)
		tampered[i] = string(b)
		err := s.Verify(strings.Join(tampered, "."), stream, "", now)
		require.Error(t, err, "part %d", i)
	}
	// A token for another stream, signed with another key with the same kid.
	other, err := playback.ParseKeys("k1:" + key(t))
	require.NoError(t, err)
	forged, err := other.Mint(stream, time.Hour, "")
	require.NoError(t, err)
	require.ErrorIs(t, s.Verify(forged, stream, "", now), playback.ErrBadSignature)
}

func TestIPBinding(t *testing.T) {
	t.Parallel()
	s, err := playback.ParseKeys("k1:" + key(t))
	require.NoError(t, err)
	stream := uuid.NewString()
	now := time.Now()
	tok, err := s.Mint(stream, time.Minute, "192.0.2.7")
	require.NoError(t, err)
	require.NoError(t, s.Verify(tok, stream, "192.0.2.7", now))
	require.NoError(t, s.Verify(tok, stream, "::ffff:192.0.2.7", now))
	require.ErrorIs(t, s.Verify(tok, stream, "192.0.2.8", now), playback.ErrWrongIP)
	require.ErrorIs(t, s.Verify(tok, stream, "", now), playback.ErrWrongIP)

	tok6, err := s.Mint(stream, time.Minute, "2001:db8::1")
	require.NoError(t, err)
	require.NoError(t, s.Verify(tok6, stream, "2001:db8::1", now))
	require.ErrorIs(t, s.Verify(tok6, stream, "2001:db8::2", now), playback.ErrWrongIP)

	_, err = s.Mint(stream, time.Minute, "not-an-ip")
	require.Error(t, err)
	_, err = s.Mint("not-a-uuid", time.Minute, "")
	require.Error(t, err)
}

func TestUnbound(t *testing.T) {
	t.Parallel()
	s, err := playback.ParseKeys("new:" + key(t) + ",old:" + key(t))
	require.NoError(t, err)
	old := &playback.Signer{Keys: map[string][]byte{"old": s.Keys["old"]}, Current: "old"}
	stream := uuid.NewString()
	now := time.Now()
	exp := now.Add(time.Hour).Truncate(time.Second)

	bound, err := old.MintAt(stream, exp, "203.0.113.9")
	require.NoError(t, err)
	un, err := s.Unbound(bound)
	require.NoError(t, err)
	require.NotEqual(t, bound, un)
	require.True(t, strings.HasPrefix(un, "old."), "signed with the key of the original")
	require.NoError(t, s.Verify(un, stream, "10.0.0.1", now), "no address binding any more")
	c, err := s.Parse(un)
	require.NoError(t, err)
	require.True(t, exp.Equal(c.Expiry), "same expiry")
	require.False(t, c.IP.IsValid())

	free, err := s.Mint(stream, time.Hour, "")
	require.NoError(t, err)
	same, err := s.Unbound(free)
	require.NoError(t, err)
	require.Equal(t, free, same)

	_, err = s.Unbound(free[:len(free)-2] + "AA")
	require.ErrorIs(t, err, playback.ErrBadSignature)
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := key(t), key(t)
	old, err := playback.ParseKeys("v1:" + k1)
	require.NoError(t, err)
	rotated, err := playback.ParseKeys("v2:" + k2 + ",v1:" + k1)
	require.NoError(t, err)
	require.Equal(t, "v2", rotated.Current)
	retired, err := playback.ParseKeys("v2:" + k2)
	require.NoError(t, err)
	stream := uuid.NewString()
	now := time.Now()

	oldTok, err := old.Mint(stream, time.Hour, "")
	require.NoError(t, err)
	newTok, err := rotated.Mint(stream, time.Hour, "")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(newTok, "v2."))

	require.NoError(t, rotated.Verify(oldTok, stream, "", now), "old key still accepted during rotation")
	require.NoError(t, rotated.Verify(newTok, stream, "", now))
	require.ErrorIs(t, old.Verify(newTok, stream, "", now), playback.ErrBadSignature, "unknown kid")
	require.ErrorIs(t, retired.Verify(oldTok, stream, "", now), playback.ErrBadSignature, "retired key refused")
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{
		"", "k1", "k1:", "k1:c2hvcnQ=", "bad kid:" + key(t), "k1:" + key(t) + ",k1:" + key(t), "k1:!!notbase64!!",
	} {
		_, err := playback.ParseKeys(spec)
		require.ErrorIs(t, err, playback.ErrInvalidKeys, "spec %q", spec)
	}
	urlKey := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	s, err := playback.ParseKeys(" a:" + key(t) + " , b_2:" + urlKey)
	require.NoError(t, err)
	require.Equal(t, "a", s.Current)
	require.Len(t, s.Keys, 2)
}

func TestParsePath(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	ok := []struct{ in, token, file string }{
		{"/live/" + id + "/index.m3u8", "", "index.m3u8"},
		{"/live/" + id + "/720p/init.mp4", "", "720p/init.mp4"},
		{"/live/" + id + "/t/k1.AAAA.BBBB/720p/123.m4s", "k1.AAAA.BBBB", "720p/123.m4s"},
		{"/live/" + id + "/manifest.mpd", "", "manifest.mpd"},
		{"/live/" + id + "/a..b.m4s", "", "a..b.m4s"},
	}
	for _, c := range ok {
		p, err := playback.ParsePath(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, id, p.StreamID)
		require.Equal(t, c.token, p.Token)
		require.Equal(t, c.file, p.File)
	}
	bad := []string{
		"/live/" + id + "/../" + uuid.NewString() + "/index.m3u8",
		"/live/" + id + "/%2e%2e/secret",
		"/live/" + id + "/%2E%2E%2Fsecret",
		"/live/" + id + "/720p/..",
		"/live/" + id + "/..",
		"/live/" + id + "/.hidden",
		"/live/" + id + "/720p/.init.mp4",
		"/live/" + id + "/a%00b",
		"/live/" + id + "/a\x00b",
		"/live/" + id + "/a\\..\\b",
		"/live/" + id + "//etc/passwd",
		"/live/" + id + "/",
		"/live/" + id,
		"/live/" + id + "/720p/",
		"/live/" + id + "/./index.m3u8",
		"/live/not-a-uuid/index.m3u8",
		"/live/" + strings.ToUpper(id) + "/index.m3u8",
		"/live/" + id + "/t/" + "../index.m3u8",
		"/live/" + id + "/t/tok/index.m3u8",
		"/live/" + id + "/t/k1.a.b",
		"/other/" + id + "/index.m3u8",
		"/live/" + id + "/a/b/c/d/e/f/g.m4s",
		"/live/" + id + "/" + strings.Repeat("a", 600),
	}
	for _, in := range bad {
		_, err := playback.ParsePath(in)
		require.ErrorIs(t, err, playback.ErrBadPath, "%q", in)
	}
	require.Equal(t, "/live/"+id+"/t/k.a.b/index.m3u8", playback.URLPath(id, "k.a.b", "index.m3u8"))
	require.Equal(t, "/live/"+id+"/index.m3u8", playback.URLPath(id, "", "index.m3u8"))
}

func FuzzVerify(f *testing.F) {
	s := &playback.Signer{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef"), "k2": []byte("fedcba9876543210fedcba9876543210")}, Current: "k1"}
	stream := "6f1c2c1e-8a4b-4b7e-9d9e-3c2f1a0b9c8d"
	now := time.Unix(1_800_000_000, 0)
	good, err := s.MintAt(stream, now.Add(time.Hour), "192.0.2.1")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "192.0.2.1")
	f.Add("k1.AAAA.BBBB", "")
	f.Add("", "")
	f.Add("k2..", "::1")
	f.Fuzz(func(t *testing.T, tok, ip string) {
		err := s.Verify(tok, stream, ip, now)
		if err != nil {
			return
		}
		// Anything accepted must carry valid claims for this stream.
		c, perr := s.Parse(tok)
		if perr != nil || c.StreamID.String() != stream || !now.Before(c.Expiry) {
			t.Fatalf("accepted token %q with claims %+v (%v)", tok, c, perr)
		}
		if tok != good {
			t.Fatalf("accepted a token that was never minted: %q", tok)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	id := "6f1c2c1e-8a4b-4b7e-9d9e-3c2f1a0b9c8d"
	for _, s := range []string{"index.m3u8", "720p/1.m4s", "t/a.b.c/init.mp4", "%2e%2e/x", "../x", "a/../../b", ".x", "a\\b"} {
		f.Add("/live/" + id + "/" + s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := playback.ParsePath(in)
		if err != nil {
			return
		}
		if !filepath.IsLocal(p.File) || filepath.Clean(p.File) != p.File || strings.ContainsAny(p.File, "\\\x00%:") {
			t.Fatalf("unsafe file %q accepted from %q", p.File, in)
		}
		for _, seg := range strings.Split(p.File, "/") {
			if seg == "" || strings.HasPrefix(seg, ".") {
				t.Fatalf("segment %q accepted from %q", seg, in)
			}
		}
		if _, err := uuid.Parse(p.StreamID); err != nil {
			t.Fatalf("stream id %q accepted", p.StreamID)
		}
	})
}
