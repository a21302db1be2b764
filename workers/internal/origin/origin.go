// Package origin is the worker's HTTP origin: it serves the HLS and DASH
// output of the streams this worker currently owns, and nothing else.
//
// Requests have the playback form GET|HEAD /live/{stream_id}[/t/{token}]/{file}
// (see package playback) and are served from {DataDir}/{stream_id}/{file}.
// The live thumbnail, thumbnail.jpg, takes ?width= (thumbnail.go).
// Paths are checked by playback.ParsePath (a strict allowlist: no "..",
// hidden files, percent encodings, backslashes or NUL bytes) and files are
// opened through an os.Root confined to the stream's directory, which also
// refuses symlinks that lead outside of it.
package origin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/dionysia/dionysia/pkg/cors"
	"github.com/dionysia/dionysia/pkg/problem"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the origin handler.
type Config struct {
	// DataDir holds one directory per stream, named by its id.
	DataDir string
	// Holds reports whether this worker currently owns streamID. Only held
	// streams are served. Required.
	Holds func(streamID string) bool
	// Signed reports whether streamID requires a playback token now (the
	// stream's live policy; see Policies). Required: the origin verifies
	// tokens itself whichever way viewers reach it (directly in the router's
	// redirect mode, or through a proxying router, which passes the token on).
	Signed func(ctx context.Context, streamID string) bool
	// Signer verifies the tokens. Without it a signed stream is refused (403).
	Signer *playback.Signer
	// SegmentDuration is the target segment length; playlists are cacheable
	// for half of it (at least 1 s). Default 2 s.
	SegmentDuration time.Duration
	// WorkerID, when set, is sent as X-Dionysia-Worker.
	WorkerID string
	Logger   *slog.Logger
	// Registry receives the origin's metrics; nil registers none.
	Registry prometheus.Registerer
	// Now is the clock for token expiry; default time.Now.
	Now func() time.Time
	// Changes, when set, tells the origin when a stream's playlists change:
	// LL-HLS blocking playlist reloads and requests for parts still being
	// made wait for them (llhls.go). Without it they are answered at once.
	Changes Changes
}

// Outcomes counted by dionysia_origin_requests_total.
const (
	OutcomeServed    = "served"
	OutcomeBadPath   = "bad_path"
	OutcomeNotHeld   = "not_held"
	OutcomeNotFound  = "not_found"
	OutcomeForbidden = "forbidden"
	OutcomePreflight = "preflight"
	OutcomeMethod    = "method_not_allowed"
	OutcomeBadQuery  = "bad_query" // a thumbnail's ?width=
	OutcomeError     = "error"     // a thumbnail that could not be scaled
	OutcomeTimeout   = "timeout"   // a blocking playlist request whose part did not come in time
)

type handler struct {
	cfg            Config
	log            *slog.Logger
	playlistMaxAge int
	requests       *prometheus.CounterVec
	scaled         *scaledCache
}

// New returns the origin handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("origin: DataDir is required")
	}
	if cfg.Holds == nil {
		return nil, errors.New("origin: Holds is required")
	}
	if cfg.Signed == nil {
		return nil, errors.New("origin: Signed is required")
	}
	if cfg.Signer != nil {
		if err := cfg.Signer.Validate(); err != nil {
			return nil, fmt.Errorf("origin: %w", err)
		}
	}
	cfg.SegmentDuration = cmp.Or(cfg.SegmentDuration, 2*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{
		cfg:            cfg,
		log:            cfg.Logger,
		playlistMaxAge: max(1, int(math.Round(cfg.SegmentDuration.Seconds()/2))),
		scaled:         newScaledCache(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_origin_requests_total",
			Help: "Origin requests by outcome.",
		}, []string{"outcome"}),
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(h.requests); err != nil {
			return nil, fmt.Errorf("origin: registering metrics: %w", err)
		}
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cors.Set(w.Header())
	if h.cfg.WorkerID != "" {
		w.Header().Set(playback.WorkerHeader, h.cfg.WorkerID)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		cors.Preflight(w)
		h.requests.WithLabelValues(OutcomePreflight).Inc()
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		h.problem(w, http.StatusMethodNotAllowed, OutcomeMethod, "only GET, HEAD and OPTIONS are allowed")
		return
	}
	p, err := playback.ParsePath(r.URL.EscapedPath())
	if err != nil {
		h.problem(w, http.StatusBadRequest, OutcomeBadPath, "not a playback path: /live/{stream_id}/{file}")
		return
	}
	if !h.cfg.Holds(p.StreamID) {
		w.Header().Set(NotHeldHeader, NotHeldValue)
		h.problem(w, http.StatusNotFound, OutcomeNotHeld, "stream is not served by this origin")
		return
	}
	if h.cfg.Signed(r.Context(), p.StreamID) {
		if h.cfg.Signer == nil {
			h.problem(w, http.StatusForbidden, OutcomeForbidden, "signed playback is not configured on this origin (DIONYSIA_PLAYBACK_KEYS)")
			return
		}
		if err := h.cfg.Signer.Verify(p.Token, p.StreamID, ClientIP(r), h.cfg.Now()); err != nil {
			h.problem(w, http.StatusForbidden, OutcomeForbidden, err.Error())
			return
		}
	}
	if p.File == ThumbnailFile {
		h.thumbnail(w, r, p)
		return
	}
	if path.Ext(p.File) == ".m3u8" && hasLLQuery(r.URL.Query()) {
		h.mediaPlaylist(w, r, p)
		return
	}
	ctype, cacheControl, ok := h.fileType(p.File)
	if !ok {
		h.problem(w, http.StatusNotFound, OutcomeNotFound, "no such file")
		return
	}
	f, info, err := open(filepath.Join(h.cfg.DataDir, p.StreamID), p.File)
	if errors.Is(err, fs.ErrNotExist) {
		if h.streamSegment(w, r, p, ctype) {
			return
		}
		if h.awaitPart(r.Context(), p.StreamID, p.File) {
			f, info, err = open(filepath.Join(h.cfg.DataDir, p.StreamID), p.File)
		}
	}
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.log.Debug("origin refused file", "stream_id", p.StreamID, "file", p.File, "err", err)
		}
		h.problem(w, http.StatusNotFound, OutcomeNotFound, "no such file")
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Cache-Control", cacheControl)
	hd.Set("ETag", fmt.Sprintf(`"%x-%x"`, info.Size(), info.ModTime().UnixNano()))
	h.requests.WithLabelValues(OutcomeServed).Inc()
	http.ServeContent(w, r, "", info.ModTime(), f)
}

// open opens file inside dir, refusing anything that resolves outside it
// (os.Root also refuses escaping symlinks) and anything but a regular file.
func open(dir, file string) (*os.File, fs.FileInfo, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("opening stream directory: %w", err)
	}
	defer root.Close()
	f, err := root.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", file, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", file, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s is not a regular file: %w", file, fs.ErrNotExist)
	}
	return f, info, nil
}

// NotHeldHeader is set (to NotHeldValue) on the 404 for a stream this origin
// does not hold, so a router can tell a moved stream from a missing file.
const (
	NotHeldHeader = "X-Dionysia-Origin-Status"
	NotHeldValue  = "not-held"
)

const immutable = "public, max-age=31536000, immutable"

// fileType returns the Content-Type and Cache-Control of a file by its
// extension; only the packager's file types are served.
func (h *handler) fileType(file string) (ctype, cacheControl string, ok bool) {
	playlist := "public, max-age=" + strconv.Itoa(h.playlistMaxAge)
	audio := isAudio(file)
	switch strings.ToLower(path.Ext(file)) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl", playlist, true
	case ".mpd":
		return "application/dash+xml", playlist, true
	case ".m4s":
		if audio {
			return "audio/mp4", immutable, true
		}
		return "video/iso.segment", immutable, true
	case ".mp4", ".cmfv":
		if audio {
			return "audio/mp4", immutable, true
		}
		return "video/mp4", immutable, true
	case ".m4a", ".cmfa":
		return "audio/mp4", immutable, true
	case ".ts":
		return "video/mp2t", immutable, true
	case ".aac":
		return "audio/aac", immutable, true
	case ".vtt":
		return "text/vtt; charset=utf-8", immutable, true
	}
	return "", "", false
}

// isAudio reports whether a file sits in an audio rendition: a directory
// whose name starts with "audio", or a file named audio*.
func isAudio(file string) bool {
	for _, seg := range strings.Split(file, "/") {
		if strings.HasPrefix(strings.ToLower(seg), "audio") {
			return true
		}
	}
	return false
}

// ClientIP is the address of the peer that sent r.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *handler) problem(w http.ResponseWriter, status int, outcome, detail string) {
	h.requests.WithLabelValues(outcome).Inc()
	problem.Error(w, status, detail)
}
