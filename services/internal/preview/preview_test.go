package preview_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dionysia/dionysia/services/internal/preview"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	resp := rec.Result()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func TestPreviewPage(t *testing.T) {
	t.Parallel()
	h := preview.New(slog.New(slog.DiscardHandler))
	id := uuid.Must(uuid.NewV7()).String()

	resp, body := get(t, h, "/play/"+id)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, body, `"/live/`+id+`/index.m3u8"`)
	require.Contains(t, body, `"/live/`+id+`/manifest.mpd"`)

	resp, body = get(t, h, "/play/"+id+"?format=dash&token=abc.DEF_-1")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"/live/`+id+`/t/abc.DEF_-1/manifest.mpd"`, "signed playback goes through the token prefix")

	resp, body = get(t, h, "/play/"+id+"?token=%3Cscript%3E")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "a token outside the URL-safe alphabet is refused")
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Contains(t, body, "token")
	require.NotContains(t, body, "<script>")

	for _, bad := range []string{"/play/not-a-uuid", "/play/" + id + "/x", "/play/", "/play/vod/", "/play/vod/x",
		"/play/vod/" + id + "/index.m3u8", "/play/vod/vod/" + id, "/play/{" + id + "}", "/play/urn:uuid:" + id} {
		resp, body = get(t, h, bad)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, bad)
		require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		require.Contains(t, body, "stream id")
	}
	resp, _ = get(t, h, "/play/assets/index.html")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestPreviewPageLiveHasDVRControls(t *testing.T) {
	t.Parallel()
	h := preview.New(slog.New(slog.DiscardHandler))
	id := uuid.NewString()
	_, body := get(t, h, "/play/"+id)
	require.Contains(t, body, `"kind":"live"`)
	require.Contains(t, body, "stream "+id)
	// The seek bar over the DVR window and the way back to the live edge,
	// with both players' live-edge APIs.
	for _, want := range []string{`id="seek"`, `id="golive"`, "Go live", "hls.liveSyncPosition", "video.seekable",
		"player.getDvrWindow()", "player.seekToOriginalLive()", "status.goLive", "status.seekTo"} {
		require.Contains(t, body, want)
	}
}

func TestPreviewPageVOD(t *testing.T) {
	t.Parallel()
	h := preview.New(slog.New(slog.DiscardHandler))
	id := uuid.NewString()

	resp, body := get(t, h, "/play/vod/"+id)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Contains(t, body, `"kind":"vod"`)
	require.Contains(t, body, `"hls":"/vod/`+id+`/index.m3u8"`)
	require.Contains(t, body, `"dash":"/vod/`+id+`/manifest.mpd"`)
	require.NotContains(t, body, `"/live/`+id, "a recording is not played from /live/")
	require.Contains(t, body, "recorded asset "+id)
	require.Contains(t, body, `href="?format=dash"`)

	resp, body = get(t, h, "/play/vod/"+strings.ToUpper(id)+"?format=dash&token=k1.AAA.BBB")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"dash":"/vod/`+id+`/t/k1.AAA.BBB/manifest.mpd"`, "signed assets play through the token prefix")
	require.Contains(t, body, `"hls":"/vod/`+id+`/t/k1.AAA.BBB/index.m3u8"`)
	require.Contains(t, body, `href="?format=hls&token=k1.AAA.BBB"`, "the format links keep the token")

	resp, body = get(t, h, "/play/vod/"+id+"?token=a/b")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "token")
}

func TestPlayersAreEmbedded(t *testing.T) {
	t.Parallel()
	// `just build` and the test recipe install the players from npm first
	// (deploy/local/player-assets.sh); a build without them would ship a
	// preview page that cannot play.
	require.True(t, preview.PlayersEmbedded(), "run deploy/local/player-assets.sh before building")
	h := preview.New(slog.New(slog.DiscardHandler))
	for _, f := range []string{"hls.min.js", "dash.mediaplayer.min.js"} {
		resp, body := get(t, h, "/play/assets/vendor/"+f)
		require.Equal(t, http.StatusOK, resp.StatusCode, f)
		require.True(t, strings.Contains(resp.Header.Get("Content-Type"), "javascript"), resp.Header.Get("Content-Type"))
		require.Greater(t, len(body), 100_000, f)
	}
}
