// Package preview serves the preview page, /play/{stream_id}: a small player
// page that plays a stream through the router with hls.js or dash.js, shows
// its ladder, the rendition playing and the measured live latency, and lets
// the viewer seek back within the stream's DVR window and return to live.
// /play/vod/{asset_id} plays a recorded asset the same way, from /vod/. The
// players are installed from npm at build time (deploy/local/player-assets.sh)
// and embedded in the binary; no CDN is involved.
package preview

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/problem"
	"github.com/google/uuid"
)

//go:embed assets
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "assets/index.html"))

// Prefix is the URL path the preview is served under.
const Prefix = "/play/"

// Handler serves GET /play/{stream_id}[?format=hls|dash][&token=T], the same
// for a recorded asset at /play/vod/{asset_id}, and the player scripts under
// /play/assets/.
type Handler struct {
	static http.Handler
	log    *slog.Logger
}

// New returns the preview handler.
func New(log *slog.Logger) *Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	return &Handler{static: http.StripPrefix(Prefix+"assets/", http.FileServerFS(sub)), log: log}
}

// PlayersEmbedded reports whether the build embedded hls.js and dash.js.
func PlayersEmbedded() bool {
	for _, f := range []string{"assets/vendor/hls.min.js", "assets/vendor/dash.mediaplayer.min.js"} {
		if _, err := fs.Stat(assets, f); err != nil {
			return false
		}
	}
	return true
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, Prefix)
	if strings.HasPrefix(rest, "assets/") {
		if rest == "assets/index.html" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.static.ServeHTTP(w, r)
		return
	}
	kind, idStr := "live", rest
	if s, ok := strings.CutPrefix(rest, "vod/"); ok {
		kind, idStr = "vod", s
	}
	id, err := uuid.Parse(idStr)
	if err != nil || strings.Contains(idStr, "/") || id.String() != strings.ToLower(idStr) {
		problem.Error(w, http.StatusNotFound,
			"the preview lives at /play/{stream_id} (live, a stream id) or /play/vod/{asset_id} (a recording), each a UUID")
		return
	}
	token := r.URL.Query().Get("token")
	if token != "" && !validToken(token) {
		problem.Error(w, http.StatusBadRequest, "token: not a playback token (only A-Z a-z 0-9 - _ . ~, at most 1024 characters)")
		return
	}
	urlPath := playback.URLPath
	if kind == "vod" {
		urlPath = playback.VODURLPath
	}
	cfgJSON, err := json.Marshal(map[string]string{
		"kind": kind,
		"hls":  urlPath(id.String(), token, "index.m3u8"),
		"dash": urlPath(id.String(), token, "manifest.mpd"),
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'")
	if err := page.Execute(w, map[string]any{
		"Kind":   kind,
		"ID":     id.String(),
		"Token":  token, // query-escaped by html/template in the format links
		"Config": template.JS(cfgJSON),
	}); err != nil {
		h.log.Warn("rendering preview page", "err", err)
	}
}

// validToken accepts the URL-safe alphabet tokens are made of, so a token
// can never inject markup or path segments.
func validToken(t string) bool {
	if len(t) > 1024 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}
