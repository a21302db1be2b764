package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/dionysia/dionysia/pkg/playback"
	"github.com/dionysia/dionysia/pkg/thumbnail"
)

// ThumbnailFile is the live thumbnail the pipeline writes in a stream's
// directory (pipeline.ThumbnailFile), served at
// /live/{stream_id}[/t/{token}]/thumbnail.jpg[?width=N].
const ThumbnailFile = "thumbnail.jpg"

// Thumbnail serving.
const (
	// thumbnailCacheControl: the file is replaced every few seconds
	// (the stream's thumbnail interval), so caches keep it briefly.
	thumbnailCacheControl = "public, max-age=2"
	// maxThumbnailBytes bounds the file read into memory to be scaled.
	maxThumbnailBytes = 8 << 20
	// scaledCacheSize bounds the scaled variants kept (each a few tens of
	// KB): a handful of widths per held stream.
	scaledCacheSize = 256
	// maxScaling bounds the scalings running at once (each ~50 ms of a
	// core for a 1280-wide source): the cores belong to the transcodes.
	maxScaling = 2
)

// scaledKey names one scaled variant of one version of a stream's
// thumbnail (its size and modification time).
type scaledKey struct {
	stream  string
	size    int64
	modTime int64
	width   int
}

// scaledCache keeps the scaled thumbnails until the file changes, so every
// request of a width after the first is a map lookup, and bounds the
// scalings running at once.
type scaledCache struct {
	sem chan struct{}

	mu      sync.Mutex
	entries map[scaledKey][]byte
}

func newScaledCache() *scaledCache {
	return &scaledCache{sem: make(chan struct{}, maxScaling), entries: map[scaledKey][]byte{}}
}

// get returns the variant for key, scaling the file read by load when it is
// not cached. It waits for a free scaling slot no longer than ctx.
func (c *scaledCache) get(ctx context.Context, key scaledKey, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	b, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	src, err := load()
	if err != nil {
		return nil, err
	}
	if b, err = thumbnail.Scale(src, key.width); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		// Older versions of this stream's thumbnail are never asked for
		// again; past the bound, anything goes.
		if (k.stream == key.stream && (k.size != key.size || k.modTime != key.modTime)) || len(c.entries) >= scaledCacheSize {
			delete(c.entries, k)
		}
	}
	c.entries[key] = b
	return b, nil
}

// thumbnail serves a held stream's live thumbnail, scaled to ?width= when
// asked (pkg/thumbnail: at least 16, capped at 1280, never scaled up). No
// thumbnail yet (the first frame not decoded, or thumbnails off) is a 404.
func (h *handler) thumbnail(w http.ResponseWriter, r *http.Request, p playback.Path) {
	width, err := thumbnail.ParseWidth(r.URL.Query().Get("width"))
	if err != nil {
		h.problem(w, http.StatusBadRequest, OutcomeBadQuery, "width: "+err.Error())
		return
	}
	dir := filepath.Join(h.cfg.DataDir, p.StreamID)
	f, info, err := open(dir, ThumbnailFile)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.log.Debug("origin refused the thumbnail", "stream_id", p.StreamID, "err", err)
		}
		h.problem(w, http.StatusNotFound, OutcomeNotFound, "no thumbnail yet: the stream's first frame has not been decoded")
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", "image/jpeg")
	hd.Set("Cache-Control", thumbnailCacheControl)
	if width == 0 {
		hd.Set("ETag", fmt.Sprintf(`"%x-%x"`, info.Size(), info.ModTime().UnixNano()))
		h.requests.WithLabelValues(OutcomeServed).Inc()
		http.ServeContent(w, r, "", info.ModTime(), f)
		return
	}
	if info.Size() > maxThumbnailBytes {
		h.problem(w, http.StatusInternalServerError, OutcomeError, "the thumbnail is too large to scale")
		return
	}
	key := scaledKey{stream: p.StreamID, size: info.Size(), modTime: info.ModTime().UnixNano(), width: width}
	data, err := h.scaled.get(r.Context(), key, func() ([]byte, error) {
		b, err := io.ReadAll(io.LimitReader(f, maxThumbnailBytes))
		if err != nil {
			return nil, fmt.Errorf("reading the thumbnail: %w", err)
		}
		return b, nil
	})
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		h.log.Warn("scaling the thumbnail", "stream_id", p.StreamID, "width", width, "err", err)
		h.problem(w, http.StatusInternalServerError, OutcomeError, "the thumbnail could not be scaled")
		return
	}
	hd.Set("ETag", fmt.Sprintf(`"%x-%x-w%d"`, info.Size(), info.ModTime().UnixNano(), width))
	h.requests.WithLabelValues(OutcomeServed).Inc()
	http.ServeContent(w, r, "", info.ModTime(), bytes.NewReader(data))
}
