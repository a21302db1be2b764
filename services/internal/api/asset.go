package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
)

func (s *Server) assetRoutes(g *echo.Group) {
	g.GET("/assets", s.listAssets)
	g.GET("/assets/:id", s.getAsset)
	g.DELETE("/assets/:id", s.deleteAsset)
}

// VODPath is the router path of an asset's file: /vod/{asset_id}/{file}
// (pkg/playback.ParseVODPath). A signed stream's assets take the stream's
// playback tokens: /vod/{asset_id}/t/{token}/{file}.
func VODPath(assetID uuid.UUID, file string) string {
	return "/vod/" + assetID.String() + "/" + file
}

// assetDoc is an asset's JSON. Playback URLs are the router's, under the
// same base URL as the live ones; only a ready asset has them.
func assetDoc(public config.PublicURLs, a store.Asset) apiv1.Asset {
	doc := apiv1.Asset{ID: a.ID, StreamID: a.StreamID, SessionIDs: a.SessionIDs, Status: a.Status,
		DurationS: a.DurationS, SizeBytes: a.SizeBytes, LostS: a.LostS, FailureReason: a.FailureReason,
		Renditions: make([]apiv1.AssetRendition, len(a.Renditions)), CreatedAt: a.CreatedAt, EndedAt: a.EndedAt,
		ReadyAt: a.ReadyAt, DeleteAfter: a.DeleteAfter}
	if doc.SessionIDs == nil {
		doc.SessionIDs = []uuid.UUID{}
	}
	for i, r := range a.Renditions {
		doc.Renditions[i] = apiv1.AssetRendition{Name: r.Name, Width: r.Width, Height: r.Height, Bandwidth: r.Bandwidth,
			Codec: r.Codec, Audio: r.Audio}
	}
	base := public.PlaybackBaseURL
	if a.Status == job.AssetReady {
		doc.Playback = &apiv1.AssetPlayback{HLS: base + VODPath(a.ID, "index.m3u8"),
			DASH: base + VODPath(a.ID, "manifest.mpd"), MP4: base + VODPath(a.ID, "download.mp4")}
		if a.Poster != "" {
			doc.Thumbnail = base + VODPath(a.ID, "poster.jpg")
		} else {
			doc.Thumbnail = base + VODPath(a.ID, "thumbnail.jpg")
		}
	}
	return doc
}

// Asset is the data of a recording.* or asset.deleted event: the asset as
// GET /assets/{id} shows it.
func (r EventData) Asset(a store.Asset) apiv1.Asset { return assetDoc(r.Public, a) }

func (s *Server) listAssets(c *echo.Context) error {
	page, err := pageFromQuery(c)
	if err != nil {
		return err
	}
	var streamID *uuid.UUID
	if v := c.QueryParam("stream_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			p := badRequest("stream_id must be a stream id (a UUID), got %q", v)
			p.fields = []apiv1.FieldError{fieldError("stream_id", "must be a UUID")}
			return p
		}
		streamID = &id
	}
	items, next, err := s.store.ListAssets(c.Request().Context(), streamID, page)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listOf(items, next, func(a store.Asset) apiv1.Asset { return assetDoc(s.cfg.Public, a) }))
}

func (s *Server) loadAsset(c *echo.Context) (store.Asset, error) {
	id, err := pathID(c, "asset")
	if err != nil {
		return store.Asset{}, err
	}
	a, err := s.store.GetAsset(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound("no asset with id %s", id)
	}
	return a, err
}

func (s *Server) getAsset(c *echo.Context) error {
	a, err := s.loadAsset(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, assetDoc(s.cfg.Public, a))
}

// deleteAsset removes a ready or failed asset's objects from the store and
// marks it deleted (204); a recording or processing asset is a 409, an
// asset deleted already a 204 again.
func (s *Server) deleteAsset(c *echo.Context) error {
	a, err := s.loadAsset(c)
	if err != nil {
		return err
	}
	switch a.Status {
	case job.AssetRecording, job.AssetProcessing:
		return conflict("asset %s is %s: delete it once it is ready or failed", a.ID, a.Status)
	case job.AssetDeleted:
		return c.NoContent(http.StatusNoContent)
	}
	if _, err := DeleteAsset(c.Request().Context(), s.store, s.objects, EventData{Public: s.cfg.Public}, a, "request"); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// DeleteAsset removes an asset's objects from the store, then marks it
// deleted and records asset.deleted in one transaction. ok is false when
// another caller deleted it first (nothing is recorded then). by says who
// deleted it ("request" or "retention"), for the log.
func DeleteAsset(ctx context.Context, st *store.Store, objects storage.Store, data EventData, a store.Asset, by string) (bool, error) {
	if _, err := objects.DeletePrefix(ctx, job.AssetPrefix(a.ID)); err != nil {
		return false, fmt.Errorf("deleting the objects of asset %s (%s): %w", a.ID, by, err)
	}
	var ok bool
	err := st.InTx(ctx, func(tx *store.Store) error {
		deleted, marked, err := tx.MarkAssetDeleted(ctx, a.ID)
		if err != nil || !marked {
			return err
		}
		ok = true
		_, err = tx.AppendEvent(ctx, store.NewEvent{Type: event.AssetDeleted, StreamID: &deleted.StreamID, Data: data.Asset(deleted)})
		return err
	})
	return ok, err
}
