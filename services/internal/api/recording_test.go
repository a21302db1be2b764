package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/services/internal/api"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/dionysia/dionysia/services/internal/vod"
	"github.com/dionysia/dionysia/services/internal/vod/vodtest"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestStreamRecordingFields(t *testing.T) {
	t.Parallel()
	b := setup(t)

	s := b.createStream(map[string]any{"name": "plain"})
	require.Equal(t, apiv1.Recording{Mode: "off"}, s.Recording)
	require.Zero(t, s.DVRWindowS)
	require.Equal(t, 10.0, s.ThumbnailIntervalS)

	rec := b.createStream(map[string]any{"name": "rec", "recording": map[string]any{"mode": "automatic", "delete_after_days": 30},
		"dvr_window_s": 600, "thumbnail_interval_s": 2.5})
	require.Equal(t, "automatic", rec.Recording.Mode)
	require.Equal(t, 30, *rec.Recording.DeleteAfterDays)
	require.Equal(t, 600, rec.DVRWindowS)
	require.Equal(t, 2.5, rec.ThumbnailIntervalS)

	r := b.do(http.MethodPatch, "/api/v1/streams/"+rec.ID.String(), b.adminKey,
		map[string]any{"recording": map[string]any{"mode": "automatic", "delete_after_days": nil}, "dvr_window_s": 21600})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var got apiv1.Stream
	r.decode(t, &got)
	require.Equal(t, apiv1.Recording{Mode: "automatic"}, got.Recording, "the setting is replaced as a whole")
	require.Equal(t, 21600, got.DVRWindowS)
	require.Equal(t, 2.5, got.ThumbnailIntervalS)

	r = b.do(http.MethodGet, "/api/v1/streams", b.readKey, nil)
	require.Equal(t, http.StatusOK, r.status)
	var list apiv1.List[apiv1.Stream]
	r.decode(t, &list)
	require.Len(t, list.Data, 2)
	require.Equal(t, "off", list.Data[0].Recording.Mode)
	require.Equal(t, 21600, list.Data[1].DVRWindowS)

	cases := []struct {
		name   string
		body   string
		fields []string
	}{
		{"mode", `{"name":"a","recording":{"mode":"sometimes"}}`, []string{"recording.mode"}},
		{"no mode", `{"name":"a","recording":{"delete_after_days":3}}`, []string{"recording.mode"}},
		{"days zero", `{"name":"a","recording":{"mode":"automatic","delete_after_days":0}}`, []string{"recording.delete_after_days"}},
		{"days huge", `{"name":"a","recording":{"mode":"automatic","delete_after_days":3651}}`, []string{"recording.delete_after_days"}},
		{"dvr negative", `{"name":"a","dvr_window_s":-1}`, []string{"dvr_window_s"}},
		{"dvr over 6 h", `{"name":"a","dvr_window_s":21601}`, []string{"dvr_window_s"}},
		{"thumbs zero", `{"name":"a","thumbnail_interval_s":0}`, []string{"thumbnail_interval_s"}},
		{"thumbs huge", `{"name":"a","thumbnail_interval_s":3601}`, []string{"thumbnail_interval_s"}},
	}
	for _, tc := range cases {
		for _, m := range []string{http.MethodPost, http.MethodPatch} {
			path, body := "/api/v1/streams", tc.body
			if m == http.MethodPatch {
				path, body = "/api/v1/streams/"+s.ID.String(), strings.Replace(body, `"name":"a",`, "", 1)
			}
			r := b.do(m, path, b.adminKey, body)
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s %s: %s", m, tc.name, r.body)
			p := r.problem(t)
			require.Equal(t, tc.fields, fieldsOf(p), "%s %s", m, tc.name)
			require.Contains(t, p.Detail, tc.fields[0])
		}
	}
}

// recorder plays a worker that records a session: it stores objects in the
// API's store and reports them with its lease.
type recorder struct {
	b       *ingestBundle
	lease   ownership.Lease
	asset   uuid.UUID
	stream  uuid.UUID
	session uuid.UUID
}

func (b *ingestBundle) acquire(worker string, streamID, sessionID, assetID uuid.UUID) *recorder {
	b.t.Helper()
	l, err := b.owners.Acquire(context.Background(), streamID.String(), sessionID.String(), ownership.Holder{WorkerID: worker})
	require.NoError(b.t, err)
	return &recorder{b: b, lease: l, asset: assetID, stream: streamID, session: sessionID}
}

func (w *recorder) report(objs []job.RecordedObject, final bool) response {
	w.b.t.Helper()
	return w.b.do(http.MethodPost, job.RecordingPath(w.session), workerSecret, job.RecordingReport{
		StreamID: w.stream, SessionID: w.session, AssetID: w.asset, WorkerID: w.lease.WorkerID,
		Token: w.lease.Token, Nonce: w.lease.Nonce, Objects: objs, Final: final})
}

// clipS is the length of the clip the recorders record (vodtest: 2 s
// segments of 360p, 180p and audio).
const clipS = 6

// segments stores the first n segments of the test clip, real CMAF, as
// packager run run of this worker, numbered from from, the first starting at
// start, and returns them (each rendition's init first) as a worker reports
// them.
func (w *recorder) segments(run, from, n int, start time.Time) []job.RecordedObject {
	w.b.t.Helper()
	c := vodtest.MakeClip(w.b.t, "ultrafast", clipS)
	require.LessOrEqual(w.b.t, n, clipS/vodtest.SegmentS)
	return vodtest.Record(w.b.t, w.b.objects, w.asset, c,
		vodtest.Run{Token: w.lease.Token, Run: run, Start: start, FirstNum: uint64(from), Count: n})
}

// reportedS is the duration of a rendition's reported segments.
func reportedS(objs []job.RecordedObject, rendition string) float64 {
	var d float64
	for _, o := range objs {
		if o.Kind == job.ObjectSegment && o.Rendition == rendition {
			d += o.DurationS
		}
	}
	return d
}

// requireRenditions checks a ready asset's renditions against the reported
// objects: one per init's track, video highest bandwidth first, then the
// audio, each with a bandwidth within the bit rates its segments measure.
func requireRenditions(t *testing.T, objs []job.RecordedObject, got []apiv1.AssetRendition) {
	t.Helper()
	var want []apiv1.AssetRendition
	rates := map[string][2]float64{} // rendition -> lowest, highest segment bit rate
	for _, o := range objs {
		switch o.Kind {
		case job.ObjectInit:
			if slices.ContainsFunc(want, func(r apiv1.AssetRendition) bool { return r.Name == o.Rendition }) {
				continue
			}
			want = append(want, apiv1.AssetRendition{Name: o.Rendition, Width: o.Track.Width, Height: o.Track.Height,
				Codec: o.Track.Codec, Audio: o.Track.Audio})
		case job.ObjectSegment:
			rate := float64(o.Size) * 8 / o.DurationS
			r, ok := rates[o.Rendition]
			if !ok {
				r = [2]float64{rate, rate}
			}
			rates[o.Rendition] = [2]float64{min(r[0], rate), max(r[1], rate)}
		}
	}
	require.Len(t, got, len(want), "%+v", got)
	for i, r := range got {
		require.GreaterOrEqual(t, float64(r.Bandwidth), math.Floor(rates[r.Name][0]), "%s bandwidth", r.Name)
		require.LessOrEqual(t, float64(r.Bandwidth), math.Ceil(rates[r.Name][1]), "%s bandwidth", r.Name)
		got[i].Bandwidth = 0
	}
	require.Equal(t, want, got)
}

func (b *ingestBundle) asset(id uuid.UUID) apiv1.Asset {
	b.t.Helper()
	r := b.do(http.MethodGet, "/api/v1/assets/"+id.String(), b.readKey, nil)
	require.Equal(b.t, http.StatusOK, r.status, string(r.body))
	var a apiv1.Asset
	r.decode(b.t, &a)
	return a
}

func (b *ingestBundle) assetsOf(streamID uuid.UUID) []apiv1.Asset {
	b.t.Helper()
	r := b.do(http.MethodGet, "/api/v1/assets?stream_id="+streamID.String(), b.readKey, nil)
	require.Equal(b.t, http.StatusOK, r.status, string(r.body))
	var l apiv1.List[apiv1.Asset]
	r.decode(b.t, &l)
	return l.Data
}

func (b *ingestBundle) waitAsset(id uuid.UUID, status string) apiv1.Asset {
	b.t.Helper()
	var a apiv1.Asset
	require.Eventually(b.t, func() bool { a = b.asset(id); return a.Status == status }, 30*time.Second, 50*time.Millisecond,
		"asset %s never became %s", id, status)
	return a
}

func TestRecordingSessionToReadyAsset(t *testing.T) {
	t.Parallel()
	b := setupIngestBackground(t, 2*time.Second, true)
	ctx := context.Background()
	s := b.createStream(map[string]any{"name": "rec", "hardware": "cpu", "recording": map[string]any{"mode": "automatic", "delete_after_days": 7},
		"dvr_window_s": 120, "thumbnail_interval_s": 5})
	plain := b.createStream(map[string]any{"name": "plain", "hardware": "cpu"})

	// Going live creates one asset, with recording.started, and the
	// transcode says so; a stream that does not record gets none.
	ev := b.ready("edge-a", s, "src-1")
	b.ready("edge-a", plain, "src-p")
	sess := b.getStream(s.ID).Session
	require.NotNil(t, sess)
	assets := b.assetsOf(s.ID)
	require.Len(t, assets, 1)
	a := assets[0]
	require.Equal(t, job.AssetRecording, a.Status)
	require.Equal(t, []uuid.UUID{sess.ID}, a.SessionIDs)
	require.Nil(t, a.Playback)
	require.Empty(t, b.assetsOf(plain.ID))
	started := b.events("/api/v1/events?type=recording.started")
	require.Equal(t, []string{event.RecordingStarted}, typesOf(started.Data))
	require.Equal(t, s.ID, *started.Data[0].StreamID)
	require.Contains(t, string(started.Data[0].Data), a.ID.String())
	tasks := b.tasksOf(job.QueueCPU, sess.ID)
	require.NotEmpty(t, tasks)
	require.Equal(t, &job.Recording{AssetID: a.ID}, tasks[0].Recording)
	require.Equal(t, 120, tasks[0].DVRWindowS)
	require.Equal(t, 5.0, tasks[0].ThumbnailIntervalS)
	plainSess := b.getStream(plain.ID).Session
	for _, tr := range b.tasksOf(job.QueueCPU, plainSess.ID) {
		require.Nil(t, tr.Recording)
	}

	// A reconnect within the grace continues the session, hence the asset.
	b.notReady(ev, edgeapi.EndPublisherDisconnected)
	ev = b.ready("edge-a", s, "src-2")
	require.Equal(t, sess.ID, b.getStream(s.ID).Session.ID)
	require.Len(t, b.assetsOf(s.ID), 1)

	// The owner's reports are accepted, once per key.
	wa := b.acquire("worker-a", s.ID, sess.ID, a.ID)
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	objsA := wa.segments(0, 1, 3, t0)
	thumb := vodtest.Thumbnail(t, b.objects, a.ID, t0.Add(3*time.Second), "red")
	thumbKey := thumb.Key
	objsA = append(objsA, thumb)
	r := wa.report(objsA, false)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var acc job.RecordingAccepted
	r.decode(t, &acc)
	require.Equal(t, len(objsA), acc.Accepted)
	r = wa.report(objsA, false) // a retry
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	stored, err := b.st.AssetObjects(ctx, a.ID)
	require.NoError(t, err)
	require.Len(t, stored, len(objsA), "a retried report adds no row")

	// Keys are never trusted: invalid or outside the asset's prefix is a 400.
	for _, key := range []string{"../etc/passwd", job.AssetPrefix(a.ID) + "720p/../../x.m4s", job.AssetPrefix(uuid.New()) + "720p/1-1.m4s",
		"assets/" + a.ID.String(), job.AssetPrefix(a.ID) + ".hidden"} {
		r := wa.report([]job.RecordedObject{{Kind: job.ObjectSegment, Rendition: "720p", Key: key, Size: 1}}, false)
		require.Equal(t, http.StatusBadRequest, r.status, "key %q: %s", key, r.body)
		require.Contains(t, r.problem(t).Detail, "key")
	}
	r = wa.report([]job.RecordedObject{{Kind: "video", Key: job.AssetPrefix(a.ID) + "x", Size: 1}}, false)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.problem(t).Detail, "kind")
	// Unknown session, wrong asset, no secret.
	other := *wa
	other.session = uuid.New()
	require.Equal(t, http.StatusNotFound, other.report(nil, false).status)
	other = *wa
	other.asset = uuid.New()
	require.Equal(t, http.StatusNotFound, other.report(nil, false).status)
	require.Equal(t, http.StatusUnauthorized, b.do(http.MethodPost, job.RecordingPath(sess.ID), b.adminKey, job.RecordingReport{}).status)

	// Another worker takes the stream over: the old lease is fenced out,
	// the new one continues the same asset (the re-dispatched task too).
	require.NoError(t, b.owners.Release(ctx, wa.lease))
	wb := b.acquire("worker-b", s.ID, sess.ID, a.ID)
	fenced := wa.segments(0, 4, 1, t0.Add(6*time.Second)) // stored, never listed
	r = wa.report(fenced, false)
	require.Equal(t, http.StatusConflict, r.status, string(r.body))
	require.Contains(t, r.problem(t).Detail, "not the current owner")
	r = wa.report(nil, true)
	require.Equal(t, http.StatusConflict, r.status, "a fenced-out final report while another worker owns the stream")
	objsB := wb.segments(0, 4, 2, t0.Add(6*time.Second))
	r = wb.report(objsB, false)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	tr, ok, err := ingestTranscodes(b).Transcode(ctx, sess.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, &job.Recording{AssetID: a.ID}, tr.Recording)

	// The publisher leaves for good: the asset is processing once the grace
	// passed; worker-b's final report (after it released the stream) builds it.
	b.notReady(ev, edgeapi.EndPublisherDisconnected)
	b.waitAsset(a.ID, job.AssetProcessing)
	require.NoError(t, b.owners.Release(ctx, wb.lease))
	r = wb.report(nil, true)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	ready := b.waitAsset(a.ID, job.AssetReady)
	accepted := append(slices.Clone(objsA), objsB...)
	require.InDelta(t, reportedS(accepted, "360p"), ready.DurationS, 1e-6, "the top rendition's segments")
	require.InDelta(t, 5*vodtest.SegmentS, ready.DurationS, vodtest.FrameS, "five 2 s segments")
	requireRenditions(t, accepted, ready.Renditions)
	require.Equal(t, []string{"360p", "180p", "audio"}, []string{ready.Renditions[0].Name, ready.Renditions[1].Name, ready.Renditions[2].Name})
	require.Equal(t, 640, ready.Renditions[0].Width)
	// The size is every object of the asset but the fenced-out worker's.
	listed, err := b.objects.List(ctx, job.AssetPrefix(a.ID))
	require.NoError(t, err)
	acceptedKey := map[string]bool{}
	for _, o := range accepted {
		acceptedKey[o.Key] = true
	}
	var size int64
	for _, info := range listed {
		size += info.Size
	}
	for _, o := range fenced {
		if !acceptedKey[o.Key] {
			size -= o.Size
		}
	}
	require.Equal(t, size, ready.SizeBytes)
	require.NotNil(t, ready.ReadyAt)
	require.NotNil(t, ready.DeleteAfter)
	require.WithinDuration(t, ready.ReadyAt.Add(7*24*time.Hour), *ready.DeleteAfter, time.Second)
	base := "https://play.example.com"
	require.Equal(t, &apiv1.AssetPlayback{HLS: base + "/vod/" + a.ID.String() + "/index.m3u8",
		DASH: base + "/vod/" + a.ID.String() + "/manifest.mpd", MP4: base + "/vod/" + a.ID.String() + "/download.mp4"}, ready.Playback)
	require.NotEmpty(t, ready.Thumbnail)
	for _, name := range []string{vod.MultivariantName, "360p/" + vod.PlaylistName, vod.ManifestName, vod.DownloadName, vod.PosterName} {
		_, err = b.objects.Stat(ctx, job.AssetPrefix(a.ID)+name)
		require.NoError(t, err, "%s is in the store", name)
	}
	require.Equal(t, []string{event.RecordingReady, event.RecordingStarted}, typesOf(b.events("/api/v1/events?type=recording.").Data), "newest first")
	r = wb.report(nil, true)
	require.Equal(t, http.StatusConflict, r.status, "a ready asset takes no report")
	require.Contains(t, r.problem(t).Detail, "no longer records")

	// What a router asks before serving /vod/.
	r = b.do(http.MethodGet, job.VODPlaybackPath(a.ID), workerSecret, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var vp job.VODPlayback
	r.decode(t, &vp)
	require.Equal(t, job.VODPlayback{AssetID: a.ID, StreamID: s.ID, Status: job.AssetReady, PlaybackPolicy: "public", DurationS: ready.DurationS,
		Thumbnails: []job.VODThumbnail{{OffsetS: 3, Key: thumbKey}}}, vp)
	require.Equal(t, http.StatusNotFound, b.do(http.MethodGet, job.VODPlaybackPath(uuid.New()), workerSecret, nil).status)
	require.Equal(t, http.StatusUnauthorized, b.do(http.MethodGet, job.VODPlaybackPath(a.ID), b.adminKey, nil).status)

	// Delete: its objects leave the store, the asset stays as deleted.
	r = b.do(http.MethodDelete, "/api/v1/assets/"+a.ID.String(), b.readKey, nil)
	require.Equal(t, http.StatusForbidden, r.status)
	r = b.do(http.MethodDelete, "/api/v1/assets/"+a.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	left, err := b.objects.List(ctx, job.AssetPrefix(a.ID))
	require.NoError(t, err)
	require.Empty(t, left)
	require.Equal(t, job.AssetDeleted, b.asset(a.ID).Status)
	require.Equal(t, []string{event.AssetDeleted}, typesOf(b.events("/api/v1/events?type=asset.").Data))
	require.Equal(t, http.StatusNoContent, b.do(http.MethodDelete, "/api/v1/assets/"+a.ID.String(), b.adminKey, nil).status)
	require.Len(t, b.events("/api/v1/events?type=asset.").Data, 1, "deleted once")
	require.Equal(t, http.StatusNotFound, b.do(http.MethodGet, "/api/v1/assets/"+uuid.NewString(), b.readKey, nil).status)
	require.Equal(t, http.StatusBadRequest, b.do(http.MethodGet, "/api/v1/assets?stream_id=nope", b.readKey, nil).status)
}

// ingestTranscodes builds transcodes as the dispatcher does.
func ingestTranscodes(b *ingestBundle) ingest.Transcodes {
	return ingest.Transcodes{Store: b.st, EdgeSecret: edgeSecret}
}

func TestRecordingDeadlineAndRetention(t *testing.T) {
	t.Parallel()
	b := setupIngestWithGrace(t, 0)
	ctx := context.Background()
	s := b.createStream(map[string]any{"name": "rec", "hardware": "cpu", "recording": map[string]any{"mode": "automatic", "delete_after_days": 1}})
	log := slog.New(slog.DiscardHandler)
	data := api.EventData{Public: b.cfg.Public}
	finalizer := api.NewAssetFinalizer(b.st, b.objects, data, log)

	// A session that records a few segments but whose worker never sends
	// its final report: built when finalize_after passes.
	ev := b.ready("edge-a", s, "src-1")
	sess := b.getStream(s.ID).Session
	a := b.assetsOf(s.ID)[0]
	w := b.acquire("worker-a", s.ID, sess.ID, a.ID)
	objs := w.segments(0, 1, 2, time.Now().Add(-time.Minute))
	r := w.report(objs, false)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	b.notReady(ev, edgeapi.EndKicked)
	got := b.waitAsset(a.ID, job.AssetProcessing)
	require.NotNil(t, got.EndedAt)
	require.Zero(t, finalizer.FinalizeDue(ctx), "not due before finalize_after")
	_, err := b.pool.Exec(ctx, `UPDATE assets SET finalize_after = now() - interval '1 second' WHERE id = $1`, a.ID)
	require.NoError(t, err)
	require.Equal(t, 1, finalizer.FinalizeDue(ctx))
	ready := b.asset(a.ID)
	require.Equal(t, job.AssetReady, ready.Status)
	require.InDelta(t, reportedS(objs, "360p"), ready.DurationS, 1e-6)
	require.InDelta(t, 2*vodtest.SegmentS, ready.DurationS, vodtest.FrameS, "two 2 s segments")
	requireRenditions(t, objs, ready.Renditions)

	// A session that recorded nothing fails.
	ev = b.ready("edge-a", s, "src-2")
	sess2 := b.getStream(s.ID).Session
	require.NotEqual(t, sess.ID, sess2.ID)
	var empty apiv1.Asset
	for _, x := range b.assetsOf(s.ID) {
		if x.ID != a.ID {
			empty = x
		}
	}
	b.notReady(ev, edgeapi.EndKicked)
	b.waitAsset(empty.ID, job.AssetProcessing)
	_, err = b.pool.Exec(ctx, `UPDATE assets SET finalize_after = now() - interval '1 second' WHERE id = $1`, empty.ID)
	require.NoError(t, err)
	require.Equal(t, 1, finalizer.FinalizeDue(ctx))
	failed := b.asset(empty.ID)
	require.Equal(t, job.AssetFailed, failed.Status)
	require.Equal(t, "no segment was recorded", *failed.FailureReason)
	require.Nil(t, failed.Playback)
	require.Equal(t, []string{event.RecordingFailed, event.RecordingStarted, event.RecordingReady, event.RecordingStarted},
		typesOf(b.events("/api/v1/events?type=recording.").Data))

	// Retention deletes what expired, objects first, and nothing else.
	retention := &api.AssetRetention{Store: b.st, Objects: b.objects, Data: data, Logger: log}
	require.Zero(t, retention.DeleteExpired(ctx), "kept for a day")
	_, err = b.pool.Exec(ctx, `UPDATE assets SET delete_after = now() - interval '1 second' WHERE id = $1`, a.ID)
	require.NoError(t, err)
	before, err := b.objects.List(ctx, job.AssetPrefix(a.ID))
	require.NoError(t, err)
	require.NotEmpty(t, before)
	require.Equal(t, 1, retention.DeleteExpired(ctx))
	left, err := b.objects.List(ctx, job.AssetPrefix(a.ID))
	require.NoError(t, err)
	require.Empty(t, left)
	require.Equal(t, job.AssetDeleted, b.asset(a.ID).Status)
	require.Equal(t, job.AssetFailed, b.asset(empty.ID).Status)
	require.Equal(t, []string{event.AssetDeleted}, typesOf(b.events("/api/v1/events?type=asset.").Data))
	require.Zero(t, retention.DeleteExpired(ctx))
}

func TestDeletingARecordingStreamKeepsItsAsset(t *testing.T) {
	t.Parallel()
	b := setupIngest(t)
	s := b.createStream(map[string]any{"name": "rec", "hardware": "cpu", "playback_policy": "public",
		"recording": map[string]any{"mode": "automatic"}})
	b.ready("edge-a", s, "src-1")
	sess := b.getStream(s.ID).Session
	a := b.assetsOf(s.ID)[0]
	require.Equal(t, job.AssetRecording, a.Status)

	r := b.do(http.MethodDelete, "/api/v1/streams/"+s.ID.String(), b.adminKey, nil)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	// The live session ended with the stream: its events, and its worker told.
	evs := b.events("/api/v1/events?stream_id=" + s.ID.String()).Data
	require.Equal(t, []string{event.StreamDeleted, event.StreamIdle, event.SessionEnded}, typesOf(evs)[:3], "newest first")
	require.Contains(t, string(evs[2].Data), "stream_deleted")
	reason, stopped, err := b.stops.Requested(context.Background(), sess.ID)
	require.NoError(t, err)
	require.True(t, stopped, "the worker is told to stop")
	require.Equal(t, edgeapi.EndKicked, reason)
	got := b.asset(a.ID)
	require.Equal(t, job.AssetProcessing, got.Status, "built with what was reported, never stuck recording")
	require.Equal(t, s.ID, got.StreamID)
	r = b.do(http.MethodGet, job.VODPlaybackPath(a.ID), workerSecret, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var vp job.VODPlayback
	r.decode(t, &vp)
	require.Equal(t, "signed", vp.PlaybackPolicy, "the stream is gone: fail closed")
}

func TestAssetBuildRetriesThenFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// A store nobody answers at: every build fails.
	down, err := storage.Open(ctx, fmt.Sprintf("s3://recordings?endpoint=http://127.0.0.1:%d", testkit.FreePort(t)), storage.Options{})
	require.NoError(t, err)
	finalizer := api.NewAssetFinalizer(b.st, down, api.EventData{Public: b.cfg.Public}, nil)
	finalizer.Attempts, finalizer.Retry = 2, time.Millisecond

	sessionID := uuid.New()
	a, err := b.st.CreateSessionAsset(ctx, uuid.New(), sessionID, nil)
	require.NoError(t, err)
	_, err = b.st.AddRecorded(ctx, store.Recorded{AssetID: a.ID, Token: 1, Final: true, Objects: []job.RecordedObject{{Kind: job.ObjectSegment,
		Rendition: "720p", Key: job.AssetPrefix(a.ID) + "720p/1-1.m4s", Size: 10, DurationS: 2, Start: time.Now()}}})
	require.NoError(t, err)
	_, ok, err := b.st.EndSessionAsset(ctx, sessionID, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)

	// The first failure is retried: the asset stays processing, takes
	// reports again, and says what went wrong.
	require.Zero(t, finalizer.FinalizeDue(ctx))
	got, err := b.st.GetAsset(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, job.AssetProcessing, got.Status)
	require.Equal(t, 1, got.BuildAttempts)
	require.True(t, got.Recording())
	require.Contains(t, *got.FailureReason, "building the VOD files")

	// The last attempt fails it, with recording.failed.
	require.Eventually(t, func() bool {
		finalizer.FinalizeDue(ctx)
		a, _ := b.st.GetAsset(ctx, a.ID)
		return a.Status == job.AssetFailed
	},
		30*time.Second, 10*time.Millisecond)
	got, err = b.st.GetAsset(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, 2, got.BuildAttempts)
	require.Contains(t, *got.FailureReason, "building the VOD files")
	require.Equal(t, []string{event.RecordingFailed}, typesOf(b.events("/api/v1/events?type=recording.").Data))
}
