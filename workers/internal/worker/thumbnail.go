package worker

import (
	"path/filepath"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/google/uuid"
)

// DefaultThumbnailInterval is how often a stream's live thumbnail is
// refreshed when its task does not say (job.Transcode.ThumbnailIntervalS 0).
const DefaultThumbnailInterval = 10 * time.Second

// ThumbnailsFunc says where the pipeline of transcode t writes its live
// thumbnail (the stream's directory, which the origin serves) and what it
// calls after each write (nil: nothing). An empty dir: no thumbnails.
type ThumbnailsFunc func(t job.Transcode) (dir string, on func(media.Thumbnail))

// thumbnailInterval is the refresh interval of t's live thumbnail.
func thumbnailInterval(t job.Transcode) time.Duration {
	if t.ThumbnailIntervalS <= 0 {
		return DefaultThumbnailInterval
	}
	return time.Duration(t.ThumbnailIntervalS * float64(time.Second))
}

// streamDir is the directory of a stream's live files (the packager's Dir).
func (h *Handler) streamDir(streamID uuid.UUID) string {
	return filepath.Join(h.DataDir, streamID.String())
}

// thumbnails is the Handler's ThumbnailsFunc: thumbnails go to the stream's
// directory; each write is recorded when the session records (the stream's
// uploader keeps it in the asset) and announced to OnThumbnail when it is set.
func (h *Handler) thumbnails(t job.Transcode) (string, func(media.Thumbnail)) {
	return h.streamDir(t.StreamID), func(th media.Thumbnail) {
		h.thumbnail(t.StreamID, th)
		if h.OnThumbnail != nil {
			h.OnThumbnail(t.StreamID, th)
		}
	}
}
