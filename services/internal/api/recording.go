package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

// Limits of a recording report.
const (
	maxReportObjects = 1000
	maxReportLost    = 1000
)

// sessionRecording registers a worker's recording report on its session's
// asset (job.RecordingPath): 200 RecordingAccepted; 409 when the reporting
// lease is not the stream's current owner or the asset no longer records;
// 404 for an unknown session or asset; 400 for a malformed report (a key
// that is invalid or outside the asset's prefix among others).
//
// A final report is also accepted after its worker released the lease,
// provided nobody owns the stream and it comes from the lease whose report
// was accepted last. Registration is idempotent on the object key.
func (s *Server) sessionRecording(c *echo.Context) error {
	ctx := c.Request().Context()
	id, err := pathID(c, "session")
	if err != nil {
		return err
	}
	var rep job.RecordingReport
	if err := readInternal(c.Request(), &rep); err != nil {
		return err
	}
	if rep.SessionID != uuid.Nil && rep.SessionID != id {
		return badRequest("session_id %s in the body differs from the path's %s", rep.SessionID, id)
	}
	if err := checkReport(rep); err != nil {
		return err
	}
	sess, err := s.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no session with id %s", id)
	}
	if err != nil {
		return err
	}
	if rep.StreamID != sess.StreamID {
		return badRequest("stream_id %s is not the stream of session %s", rep.StreamID, id)
	}
	lease := ownership.Lease{StreamID: sess.StreamID.String(), Token: rep.Token, Nonce: rep.Nonce}
	released := false // the lease was released and nobody owns the stream
	if err := s.owners.CheckToken(ctx, lease); err != nil {
		if !errors.Is(err, ownership.ErrLost) {
			return err
		}
		if !rep.Final {
			return conflict("lease token %d is not the current owner of stream %s: stop recording", rep.Token, sess.StreamID)
		}
		if _, owned, err := s.owners.Lookup(ctx, lease.StreamID); err != nil {
			return err
		} else if owned {
			return conflict("lease token %d is not the current owner of stream %s: stop recording", rep.Token, sess.StreamID)
		}
		released = true
	}
	var (
		added int
		asset store.Asset
	)
	err = s.store.InTx(ctx, func(tx *store.Store) error {
		cur, err := tx.AssetOfSession(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("session %s records no asset", id)
		}
		if err != nil {
			return err
		}
		if cur.ID != rep.AssetID {
			return notFound("asset %s is not the asset of session %s", rep.AssetID, id)
		}
		if asset, err = tx.LockAsset(ctx, cur.ID); err != nil {
			return err
		}
		if !asset.Recording() {
			return conflict("asset %s is %s and no longer records", asset.ID, asset.Status)
		}
		if released && (asset.LastToken == nil || *asset.LastToken != rep.Token) {
			return conflict("lease token %d was released and is not the last accepted one: its final report is refused", rep.Token)
		}
		added, err = tx.AddRecorded(ctx, store.Recorded{AssetID: asset.ID, Token: rep.Token, Final: rep.Final,
			Objects: rep.Objects, Lost: rep.Lost})
		return err
	})
	if err != nil {
		return err
	}
	if added > 0 || rep.Final {
		s.log.DebugContext(ctx, "recording report accepted", "asset_id", asset.ID, "session_id", id, "token", rep.Token,
			"objects", len(rep.Objects), "new", added, "lost", len(rep.Lost), "final", rep.Final)
	}
	if rep.Final && asset.Status == job.AssetProcessing && s.finalizer != nil {
		s.finalizer.Kick(asset.ID)
	}
	return c.JSON(http.StatusOK, job.RecordingAccepted{Accepted: len(rep.Objects)})
}

// checkReport validates a report's form: its lease, and every object's
// kind and keys, which must be valid (storage.CheckKey) and inside the
// asset's prefix.
func checkReport(rep job.RecordingReport) error {
	switch {
	case rep.AssetID == uuid.Nil:
		return badRequest("asset_id is required")
	case rep.StreamID == uuid.Nil:
		return badRequest("stream_id is required")
	case rep.Token <= 0 || rep.Nonce == "":
		return badRequest("token and nonce (the worker's ownership lease) are required")
	case len(rep.Objects) > maxReportObjects:
		return badRequest("a report lists at most %d objects, got %d", maxReportObjects, len(rep.Objects))
	case len(rep.Lost) > maxReportLost:
		return badRequest("a report lists at most %d lost segments, got %d", maxReportLost, len(rep.Lost))
	}
	prefix := job.AssetPrefix(rep.AssetID)
	inside := func(field, key string) error {
		if err := storage.CheckKey(key); err != nil {
			return badRequest("%s: %v", field, err)
		}
		if !strings.HasPrefix(key, prefix) {
			return badRequest("%s: key %q is outside the asset's prefix %q", field, key, prefix)
		}
		return nil
	}
	for i, o := range rep.Objects {
		field := fmt.Sprintf("objects[%d]", i)
		switch o.Kind {
		case job.ObjectInit, job.ObjectSegment:
			if o.Rendition == "" {
				return badRequest("%s.rendition is required for kind %s", field, o.Kind)
			}
		case job.ObjectThumbnail:
		default:
			return badRequest("%s.kind must be %s, %s or %s, got %q", field, job.ObjectInit, job.ObjectSegment, job.ObjectThumbnail, o.Kind)
		}
		if o.Size < 0 || o.DurationS < 0 || o.Run < 0 || o.Width < 0 || o.Height < 0 {
			return badRequest("%s: size, duration_s, run, width and height must not be negative", field)
		}
		if err := inside(field+".key", o.Key); err != nil {
			return err
		}
		if o.Init != "" {
			if err := inside(field+".init", o.Init); err != nil {
				return err
			}
		}
	}
	for i, l := range rep.Lost {
		if l.Rendition == "" || l.DurationS < 0 {
			return badRequest("lost[%d]: rendition is required and duration_s must not be negative", i)
		}
	}
	return nil
}

// assetPlayback tells a router what it needs to serve an asset's VOD files
// (job.VODPlaybackPath): its stream, status, the stream's playback policy
// ("signed" when the stream was deleted: fail closed) and its thumbnails.
func (s *Server) assetPlayback(c *echo.Context) error {
	ctx := c.Request().Context()
	id, err := pathID(c, "asset")
	if err != nil {
		return err
	}
	a, err := s.store.GetAsset(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no asset with id %s", id)
	}
	if err != nil {
		return err
	}
	policy := store.PlaybackSigned
	st, err := s.store.GetStream(ctx, a.StreamID)
	switch {
	case err == nil:
		policy = st.PlaybackPolicy
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	thumbs, err := s.store.AssetThumbnails(ctx, a.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, job.VODPlayback{AssetID: a.ID, StreamID: a.StreamID, Status: a.Status,
		PlaybackPolicy: policy, DurationS: a.DurationS, Thumbnails: thumbs})
}
