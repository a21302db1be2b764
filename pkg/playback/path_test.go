package playback_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestParseVODPath(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	ok := []struct{ in, token, file string }{
		{"/vod/" + id + "/index.m3u8", "", "index.m3u8"},
		{"/vod/" + id + "/manifest.mpd", "", "manifest.mpd"},
		{"/vod/" + id + "/download.mp4", "", "download.mp4"},
		{"/vod/" + id + "/720p/init-42-0.mp4", "", "720p/init-42-0.mp4"},
		{"/vod/" + id + "/t/k1.AAAA.BBBB/720p/42-17.m4s", "k1.AAAA.BBBB", "720p/42-17.m4s"},
		{"/vod/" + id + "/thumbs/1796000000000.jpg", "", "thumbs/1796000000000.jpg"},
		{"/vod/" + id + "/thumbnail.jpg", "", "thumbnail.jpg"},
	}
	for _, c := range ok {
		p, err := playback.ParseVODPath(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, id, p.AssetID)
		require.Equal(t, c.token, p.Token)
		require.Equal(t, c.file, p.File)
		require.Equal(t, c.in, playback.VODURLPath(p.AssetID, p.Token, p.File), "round trip")
	}
	bad := []string{
		"/vod/" + id + "/../" + uuid.NewString() + "/index.m3u8",
		"/vod/" + id + "/%2e%2e/secret",
		"/vod/" + id + "/720p/%2F..%2Findex.m3u8",
		"/vod/" + id + "/..",
		"/vod/" + id + "/.hidden",
		"/vod/" + id + "/720p/.init.mp4.tmp123",
		"/vod/" + id + "/a%00b",
		"/vod/" + id + "/a\\..\\b",
		"/vod/" + id + "//etc/passwd",
		"/vod/" + id + "/",
		"/vod/" + id,
		"/vod/" + id + "/720p/",
		"/vod/" + id + "/./index.m3u8",
		"/vod/not-a-uuid/index.m3u8",
		"/vod/" + strings.ToUpper(id) + "/index.m3u8",
		"/vod/" + id + "/t/tok/index.m3u8",
		"/vod/" + id + "/t/k1.a.b",
		"/live/" + id + "/index.m3u8",
		"/vod/" + id + "/a/b/c/d/e/f/g.m4s",
		"/vod/" + id + "/" + strings.Repeat("a", 600),
	}
	for _, in := range bad {
		_, err := playback.ParseVODPath(in)
		require.ErrorIs(t, err, playback.ErrBadPath, "%q", in)
	}
	_, err := playback.ParsePath("/vod/" + id + "/index.m3u8")
	require.ErrorIs(t, err, playback.ErrBadPath, "a VOD path is not a live one")
}

func FuzzParseVODPath(f *testing.F) {
	id := "6f1c2c1e-8a4b-4b7e-9d9e-3c2f1a0b9c8d"
	for _, s := range []string{"index.m3u8", "720p/1-2.m4s", "t/a.b.c/init-1-0.mp4", "%2e%2e/x", "../x", "a/../../b", ".x", "a\\b", "thumbs/1.jpg"} {
		f.Add("/vod/" + id + "/" + s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := playback.ParseVODPath(in)
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
		// What the router reads: always a valid key inside the asset.
		id, err := uuid.Parse(p.AssetID)
		if err != nil {
			t.Fatalf("asset id %q accepted", p.AssetID)
		}
		if err := storage.CheckKey("assets/" + id.String() + "/" + p.File); err != nil {
			t.Fatalf("key of %q refused: %v", in, err)
		}
	})
}
