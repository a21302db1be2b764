package worker

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/workers/internal/media"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// A session that records: its segments (and a thumbnail handed to the
// handler) reach the store under the asset's prefix as they complete, the
// API hears of each, and the final report comes before the finished event.
func TestHandlerRecordsASession(t *testing.T) {
	tb := setup(t)
	store, err := storage.NewFile(filepath.Join(t.TempDir(), "store"))
	require.NoError(t, err)
	tb.handler.Store = store
	p := payload(t, liveSource(t))
	asset := uuid.Must(uuid.NewV7())
	p.Recording = &job.Recording{AssetID: asset}
	tb.handler.SourceGrace = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tb.handler.ProcessTask(ctx, task(t, p)) }()

	has := func(kind string) bool {
		for _, r := range tb.events.recorded() {
			for _, o := range r.Objects {
				if o.Kind == kind {
					return true
				}
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return has(job.ObjectSegment) }, time.Minute, 50*time.Millisecond,
		"segments are recorded while the session runs")
	spool := filepath.Join(tb.dataDir, SpoolDirName, p.SessionID.String())
	require.DirExists(t, spool)

	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 32, 18)), nil))
	thumb := filepath.Join(t.TempDir(), "thumb.jpg")
	require.NoError(t, os.WriteFile(thumb, buf.Bytes(), 0o644))
	at := time.Now().UTC()
	tb.handler.thumbnail(uuid.Must(uuid.NewV7()), media.Thumbnail{Path: thumb, At: at, Width: 32, Height: 18}) // not recorded here: ignored
	tb.handler.thumbnail(p.StreamID, media.Thumbnail{Path: thumb, At: at, Width: 32, Height: 18})
	require.Eventually(t, func() bool { return has(job.ObjectThumbnail) }, time.Minute, 50*time.Millisecond)

	require.NoError(t, tb.stops.Request(ctx, p.SessionID, "publisher_disconnected"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("handler did not stop after the stop request")
	}

	tb.events.mu.Lock()
	order := slices.Clone(tb.events.order)
	tb.events.mu.Unlock()
	final := slices.Index(order, "recording-final")
	require.GreaterOrEqual(t, final, 0, "a final report: %v", order)
	require.Less(t, final, slices.Index(order, job.EventFinished), "the final report comes before the finished event: %v", order)
	require.Equal(t, 1, strings.Count(strings.Join(order, ","), "recording-final"))

	prefix := job.AssetPrefix(asset)
	inits := map[string]bool{}
	segments := 0
	var thumbs []string
	for _, r := range tb.events.recorded() {
		require.Equal(t, p.StreamID, r.StreamID)
		require.Equal(t, asset, r.AssetID)
		require.Equal(t, "worker-a", r.WorkerID)
		require.Positive(t, r.Token)
		require.NotEmpty(t, r.Nonce)
		require.Empty(t, r.Lost)
		for _, o := range r.Objects {
			require.True(t, strings.HasPrefix(o.Key, prefix), o.Key)
			info, err := store.Stat(ctx, o.Key)
			require.NoError(t, err, o.Key)
			require.Equal(t, o.Size, info.Size, o.Key)
			switch o.Kind {
			case job.ObjectInit:
				require.Contains(t, o.Key, "/init-"+strconv.FormatInt(r.Token, 10)+"-")
				inits[o.Key] = true
			case job.ObjectSegment:
				require.True(t, inits[o.Init], "%s: header %s reported before", o.Key, o.Init)
				segments++
			case job.ObjectThumbnail:
				// The pipeline's own thumbnails are recorded too (the
				// handler's thumbnail hook), each under the time it was shown.
				require.Equal(t, prefix+"thumbs/"+strconv.FormatInt(o.Start.UnixMilli(), 10)+".jpg", o.Key)
				thumbs = append(thumbs, o.Key)
			}
		}
	}
	require.Len(t, inits, 3, "360p, 180p and audio")
	require.GreaterOrEqual(t, segments, 3)
	require.NotEmpty(t, thumbs, "thumbnails are recorded")
	require.NoDirExists(t, spool, "the spool is removed at the end")
}
