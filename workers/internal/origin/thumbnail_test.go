package origin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/workers/internal/origin"
)

// testJPEG encodes a w×h gradient (shade varies it) with the standard
// library's encoder.
func testJPEG(t *testing.T, w, h int, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x * 255 / w), G: uint8(y * 255 / h), B: shade, A: 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}))
	return b.Bytes()
}

func jpegSize(t *testing.T, b []byte) [2]int {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	require.NoError(t, err, "a JPEG")
	return [2]int{img.Bounds().Dx(), img.Bounds().Dy()}
}

func requireProblem(t *testing.T, res *http.Response, body string, status int, detail string) {
	t.Helper()
	require.Equal(t, status, res.StatusCode, body)
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	var p struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	require.Equal(t, status, p.Status)
	require.Contains(t, p.Detail, detail)
}

func TestThumbnail(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	path := playback.URLPath(b.stream, "", origin.ThumbnailFile)

	// No thumbnail yet: the stream is held but its first frame is not decoded.
	res, body := b.get(t, path, nil)
	requireProblem(t, res, body, http.StatusNotFound, "no thumbnail yet")

	file := filepath.Join(b.dir, b.stream, origin.ThumbnailFile)
	full := testJPEG(t, 1280, 720, 0)
	require.NoError(t, os.WriteFile(file, full, 0o644))

	res, body = b.get(t, path, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "image/jpeg", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=2", res.Header.Get("Cache-Control"), "short-lived: replaced every interval")
	require.Equal(t, "*", res.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, full, []byte(body))
	fullETag := res.Header.Get("ETag")
	require.NotEmpty(t, fullETag)

	res, body = b.get(t, path+"?width=320", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "image/jpeg", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=2", res.Header.Get("Cache-Control"))
	require.Equal(t, [2]int{320, 180}, jpegSize(t, []byte(body)), "scaled, aspect kept")
	scaled, scaledETag := body, res.Header.Get("ETag")
	require.NotEqual(t, fullETag, scaledETag, "each width has its own ETag")

	// Asked again: the same bytes (kept), and revalidation works.
	res, body = b.get(t, path+"?width=320", nil)
	require.Equal(t, scaled, body)
	res, _ = b.get(t, path+"?width=320", map[string]string{"If-None-Match": scaledETag})
	require.Equal(t, http.StatusNotModified, res.StatusCode)

	// Wider than the source or than 1280: the source as it is, never scaled up.
	for _, w := range []string{"1280", "1920", "100000"} {
		res, body = b.get(t, path+"?width="+w, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, w)
		require.Equal(t, full, []byte(body), w)
	}

	// The next thumbnail replaces the file: the scaled one follows.
	next := testJPEG(t, 640, 360, 200)
	later := time.Now().Add(time.Second)
	require.NoError(t, os.WriteFile(file, next, 0o644))
	require.NoError(t, os.Chtimes(file, later, later))
	res, body = b.get(t, path+"?width=320", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotEqual(t, scaled, body, "scaled from the new file")
	require.Equal(t, [2]int{320, 180}, jpegSize(t, []byte(body)))

	for _, bad := range []string{"abc", "8", "-1", "0", "15", "1.5"} {
		res, body = b.get(t, path+"?width="+bad, nil)
		requireProblem(t, res, body, http.StatusBadRequest, "width")
	}
	require.Equal(t, 6.0, counter(t, b.reg, origin.OutcomeBadQuery))

	// A stream this origin does not hold: 404, as for any of its files.
	b.held.Store(false)
	res, body = b.get(t, path, nil)
	requireProblem(t, res, body, http.StatusNotFound, "not served by this origin")
	require.Equal(t, origin.NotHeldValue, res.Header.Get(origin.NotHeldHeader))
}

// TestThumbnailOtherJPEGs: only the stream's thumbnail.jpg is served; other
// JPEG names and a thumbnail that is not a JPEG are refused.
func TestThumbnailOtherJPEGs(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	sd := filepath.Join(b.dir, b.stream)
	write(t, filepath.Join(sd, "other.jpg"), string(testJPEG(t, 64, 36, 0)))
	res, body := b.get(t, playback.URLPath(b.stream, "", "other.jpg"), nil)
	requireProblem(t, res, body, http.StatusNotFound, "no such file")

	write(t, filepath.Join(sd, origin.ThumbnailFile), "not a jpeg")
	res, body = b.get(t, playback.URLPath(b.stream, "", origin.ThumbnailFile)+"?width=100", nil)
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json"), body)
}

// TestThumbnailSigned: a signed stream's thumbnail needs the token like any
// of its files.
func TestThumbnailSigned(t *testing.T) {
	t.Parallel()
	signer := &playback.Signer{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"}
	b := setup(t, func(c *origin.Config) {
		c.Signed = func(context.Context, string) bool { return true }
		c.Signer = signer
	})
	write(t, filepath.Join(b.dir, b.stream, origin.ThumbnailFile), string(testJPEG(t, 640, 360, 0)))
	res, body := b.get(t, playback.URLPath(b.stream, "", origin.ThumbnailFile), nil)
	requireProblem(t, res, body, http.StatusForbidden, "")
	tok, err := signer.Mint(b.stream, time.Minute, "")
	require.NoError(t, err)
	res, body = b.get(t, playback.URLPath(b.stream, tok, origin.ThumbnailFile)+"?width=160", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Equal(t, [2]int{160, 90}, jpegSize(t, []byte(body)))
}
