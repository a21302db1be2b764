package router_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/services/internal/router"
)

func thumbnailJPEG(t *testing.T, w, h int, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x * 255 / w), G: shade, B: uint8(y * 255 / h), A: 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}))
	return b.Bytes()
}

// thumbnailStream gives the bundle's stream a directory of its own (not the
// shared media) and writes its thumbnail.jpg; it returns the file's path.
func thumbnailStream(t *testing.T, b *testBundle, jpg []byte) string {
	t.Helper()
	dir := filepath.Join(b.dataDir, b.stream)
	require.NoError(t, os.Remove(dir)) // the symlink to the shared media
	require.NoError(t, os.Mkdir(dir, 0o755))
	file := filepath.Join(dir, "thumbnail.jpg")
	require.NoError(t, os.WriteFile(file, jpg, 0o644))
	return file
}

// TestThumbnailThroughRouter: the live thumbnail reaches the owner's real
// origin through the proxying router with its ?width=, is never kept by the
// shield (the next one shows at once), and an idle stream is a problem+json
// 404.
func TestThumbnailThroughRouter(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeProxy, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	first := thumbnailJPEG(t, 1280, 720, 0)
	file := thumbnailStream(t, b, first)
	p := playback.URLPath(b.stream, "", "thumbnail.jpg")

	res, body := b.get(t, p)
	requireProblem(t, res, body, http.StatusNotFound, "not live")

	b.own(t, "A", originA, playback.PolicyPublic)
	require.Eventually(t, func() bool { res, _ := b.get(t, p); return res.StatusCode == http.StatusOK },
		5*time.Second, 10*time.Millisecond)
	res, body = b.get(t, p)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "image/jpeg", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=2", res.Header.Get("Cache-Control"), "short-lived, not immutable")
	require.Equal(t, "A", res.Header.Get(router.WorkerHeader))
	require.Empty(t, res.Header.Get(router.CacheHeader), "the shield passes thumbnails through")
	require.Equal(t, first, body)

	res, body = b.get(t, p+"?width=320")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	img, err := jpeg.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, image.Pt(320, 180), img.Bounds().Size(), "the router passes ?width= to the origin")

	res, body = b.get(t, p+"?width=abc")
	requireProblem(t, res, body, http.StatusBadRequest, "width")

	// The next thumbnail replaces the file: served at once, nothing stale.
	next := thumbnailJPEG(t, 640, 360, 250)
	require.NoError(t, os.WriteFile(file, next, 0o644))
	later := time.Now().Add(time.Second)
	require.NoError(t, os.Chtimes(file, later, later))
	res, body = b.get(t, p)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, next, body)

	// The origin has no thumbnail (yet): its problem+json 404 comes through.
	require.NoError(t, os.Remove(file))
	res, body = b.get(t, p)
	requireProblem(t, res, body, http.StatusNotFound, "no thumbnail yet")
}

// TestSignedThumbnail: a signed stream's thumbnail needs a token like its
// other live files; redirect mode keeps ?width=.
func TestSignedThumbnail(t *testing.T) {
	t.Parallel()
	b := setup(t, router.ModeRedirect, nil)
	originA, _ := startOrigin(t, b.dataDir, "A", b.prefix)
	thumbnailStream(t, b, thumbnailJPEG(t, 640, 360, 0))
	b.own(t, "A", originA, playback.PolicySigned)

	res, body := b.get(t, playback.URLPath(b.stream, "", "thumbnail.jpg"))
	require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", body)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))

	tok, err := b.signer.Mint(b.stream, time.Minute, "")
	require.NoError(t, err)
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err = noFollow.Get(b.router.URL + playback.URLPath(b.stream, tok, "thumbnail.jpg") + "?width=160")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusFound, res.StatusCode)
	require.Equal(t, originA+playback.URLPath(b.stream, tok, "thumbnail.jpg")+"?width=160", res.Header.Get("Location"))

	res, body = b.get(t, playback.URLPath(b.stream, tok, "thumbnail.jpg")+"?width=160")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	img, err := jpeg.Decode(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, image.Pt(160, 90), img.Bounds().Size())
}
