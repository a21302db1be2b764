package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestStreamRecordingSettingsRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.st.ResolveProfile(b.ctx, store.DefaultProfile)
	require.NoError(t, err)

	plain, err := b.st.CreateStream(b.ctx, store.NewStream{Name: "plain", ProfileID: p.ID})
	require.NoError(t, err)
	require.Equal(t, store.RecordingOff, plain.RecordingMode)
	require.False(t, plain.Records())
	require.Nil(t, plain.DeleteAfterDays)
	require.Zero(t, plain.DVRWindowS)
	require.Equal(t, store.DefaultThumbnailInterval, plain.ThumbnailIntervalS)

	days := 30
	rec, err := b.st.CreateStream(b.ctx, store.NewStream{Name: "rec", ProfileID: p.ID, RecordingMode: store.RecordingAutomatic,
		DeleteAfterDays: &days, DVRWindowS: 600, ThumbnailIntervalS: 2.5})
	require.NoError(t, err)
	got, err := b.st.GetStream(b.ctx, rec.ID)
	require.NoError(t, err)
	require.True(t, got.Records())
	require.Equal(t, 30, *got.DeleteAfterDays)
	require.Equal(t, 600, got.DVRWindowS)
	require.Equal(t, 2.5, got.ThumbnailIntervalS)

	// A recording setting replaces mode and retention together; the other
	// fields keep their value.
	dvr := 0
	got, err = b.st.UpdateStream(b.ctx, rec.ID, store.StreamUpdate{Recording: &store.RecordingSettings{Mode: store.RecordingAutomatic},
		DVRWindowS: &dvr})
	require.NoError(t, err)
	require.Nil(t, got.DeleteAfterDays)
	require.Zero(t, got.DVRWindowS)
	require.Equal(t, 2.5, got.ThumbnailIntervalS)
	got, err = b.st.UpdateStream(b.ctx, rec.ID, store.StreamUpdate{Name: ptr("renamed")})
	require.NoError(t, err)
	require.True(t, got.Records(), "an update without recording keeps it")

	// The database refuses what the API validates.
	bad := 21601
	_, err = b.st.UpdateStream(b.ctx, rec.ID, store.StreamUpdate{DVRWindowS: &bad})
	require.ErrorIs(t, err, store.ErrInvalid)
	_, err = b.st.UpdateStream(b.ctx, rec.ID, store.StreamUpdate{Recording: &store.RecordingSettings{Mode: "sometimes"}})
	require.ErrorIs(t, err, store.ErrInvalid)
}

func ptr[T any](v T) *T { return &v }

func TestAssetRecordingAndFinalization(t *testing.T) {
	t.Parallel()
	b := setup(t)
	streamID, sessionID := uuid.New(), uuid.New()
	days := 7
	a, err := b.st.CreateSessionAsset(b.ctx, streamID, sessionID, &days)
	require.NoError(t, err)
	require.Equal(t, job.AssetRecording, a.Status)
	require.Equal(t, []uuid.UUID{sessionID}, a.SessionIDs)
	require.True(t, a.Recording())

	got, err := b.st.AssetOfSession(b.ctx, sessionID)
	require.NoError(t, err)
	require.Equal(t, a.ID, got.ID)
	_, err = b.st.AssetOfSession(b.ctx, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)

	prefix := job.AssetPrefix(a.ID)
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	objs := []job.RecordedObject{
		{Kind: job.ObjectInit, Rendition: "720p", Key: prefix + "720p/init-5-0.mp4", Size: 800,
			Track: &job.RecordedTrack{Codec: "avc1.64001f", Timescale: 90000, Width: 1280, Height: 720}},
		{Kind: job.ObjectSegment, Rendition: "720p", Key: prefix + "720p/5-1.m4s", Size: 1000, Number: 1,
			Init: prefix + "720p/init-5-0.mp4", Start: start, DurationS: 2, MediaStart: 180000},
		{Kind: job.ObjectThumbnail, Key: prefix + "thumbs/1.jpg", Size: 50, Start: start.Add(3 * time.Second), Width: 320, Height: 180},
	}
	n, err := b.st.AddRecorded(b.ctx, store.Recorded{AssetID: a.ID, Token: 5, Objects: objs,
		Lost: []job.LostSegment{{Rendition: "720p", Number: 2, DurationS: 2, Reason: "queue full"}}})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = b.st.AddRecorded(b.ctx, store.Recorded{AssetID: a.ID, Token: 5, Objects: objs}) // a retry
	require.NoError(t, err)
	require.Zero(t, n, "a retried report adds nothing")

	stored, err := b.st.AssetObjects(b.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, objs, stored, "objects come back as reported, in accepted order")
	lost, err := b.st.AssetLost(b.ctx, a.ID)
	require.NoError(t, err)
	require.Len(t, lost, 1)
	thumbs, err := b.st.AssetThumbnails(b.ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, []job.VODThumbnail{{OffsetS: 3, Key: prefix + "thumbs/1.jpg"}}, thumbs)

	// The session ends without a final report: due in a minute, not now.
	ended, ok, err := b.st.EndSessionAsset(b.ctx, sessionID, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, job.AssetProcessing, ended.Status)
	require.WithinDuration(t, time.Now().Add(time.Minute), *ended.FinalizeAfter, 10*time.Second)
	_, ok, err = b.st.EndSessionAsset(b.ctx, sessionID, time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "ended once")
	due, err := b.st.ClaimDueAssets(b.ctx, 10, time.Minute)
	require.NoError(t, err)
	require.Empty(t, due)

	// The last lease's final report makes it due at once; concurrent
	// claimers (API replicas) get it once.
	_, err = b.st.AddRecorded(b.ctx, store.Recorded{AssetID: a.ID, Token: 5, Final: true})
	require.NoError(t, err)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed []store.Asset
	)
	for range 4 {
		wg.Go(func() {
			got, err := b.st.ClaimDueAssets(b.ctx, 10, time.Minute)
			require.NoError(t, err)
			mu.Lock()
			claimed = append(claimed, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Len(t, claimed, 1)
	require.False(t, claimed[0].Recording(), "a claimed asset takes no more reports")
	_, ok, err = b.st.ClaimAsset(b.ctx, a.ID, time.Minute)
	require.NoError(t, err)
	require.False(t, ok)

	ready, ok, err := b.st.SetAssetReady(b.ctx, a.ID, store.AssetBuilt{DurationS: 2, SizeBytes: 1850, LostS: 2,
		Renditions: []store.AssetRendition{{Name: "720p", Width: 1280, Height: 720, Codec: "avc1.64001f"}}})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, job.AssetReady, ready.Status)
	require.NotNil(t, ready.ReadyAt)
	require.WithinDuration(t, ready.ReadyAt.Add(7*24*time.Hour), *ready.DeleteAfter, time.Second)
	require.Len(t, ready.Renditions, 1)

	page, next, err := b.st.ListAssets(b.ctx, &streamID, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Nil(t, next)
	require.Len(t, page, 1)
	page, _, err = b.st.ListAssets(b.ctx, ptr(uuid.New()), store.Page{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, page)

	deleted, ok, err := b.st.MarkAssetDeleted(b.ctx, a.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, job.AssetDeleted, deleted.Status)
	_, ok, err = b.st.MarkAssetDeleted(b.ctx, a.ID)
	require.NoError(t, err)
	require.False(t, ok)
	stored, err = b.st.AssetObjects(b.ctx, a.ID)
	require.NoError(t, err)
	require.Empty(t, stored)
}
