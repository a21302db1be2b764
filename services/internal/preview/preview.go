// Package preview serves the preview page, /play/{stream_id}: a small player
// page that plays a stream through the router with hls.js or dash.js, shows
// its ladder, the rendition playing and the measured live latency. The players
// are installed from npm at build time (deploy/local/player-assets.sh) and
// embedded in the binary; no CDN is involved.
package preview

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/google/uuid"
)

//go:embed assets
var assets embed.FS

var page = template.Must(template.ParseFS(assets, "assets/index.html"))

// Prefix is the URL path the preview is served under.
const Prefix = "/play/"

// Handler serves GET /play/{stream_id}[?format=hls|dash][&token=T] and the
// player scripts under /play/assets/.
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
	id, err := uuid.Parse(rest)
	if err != nil || strings.Contains(rest, "/") {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"type": "about:blank", "title": "Not Found", "status": http.StatusNotFound,
			"detail": "the preview lives at /play/{stream_id}, with a stream id (a UUID)",
		})
		return
	}
	token := r.URL.Query().Get("token")
	if token != "" && !validToken(token) {
		http.Error(w, "malformed token", http.StatusBadRequest)
		return
	}
	cfgJSON, err := json.Marshal(map[string]string{
		"hls":  playback.URLPath(id.String(), token, "index.m3u8"),
		"dash": playback.URLPath(id.String(), token, "manifest.mpd"),
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tokenQuery := ""
	if token != "" {
		tokenQuery = "&token=" + url.QueryEscape(token)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'")
	if err := page.Execute(w, map[string]any{
		"StreamID":   id.String(),
		"TokenQuery": tokenQuery,
		"Config":     template.JS(cfgJSON),
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
