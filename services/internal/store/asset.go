package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Asset is the recording of a stream's session (docs/recording.md): its
// objects in the store (pkg/storage, under job.AssetPrefix) and, once
// built, its VOD files.
type Asset struct {
	ID         uuid.UUID
	StreamID   uuid.UUID // the stream's id, kept after the stream is deleted
	SessionIDs []uuid.UUID
	Status     string // job.AssetRecording, AssetProcessing, AssetReady, AssetFailed or AssetDeleted
	CreatedAt  time.Time
	EndedAt    *time.Time // when its session ended for good
	ReadyAt    *time.Time
	// FinalizeAfter is when a processing asset is built even without a final
	// report.
	FinalizeAfter *time.Time
	// BuildClaimedAt is when a replica started building it (nil: not yet);
	// reports are refused from then on.
	BuildClaimedAt *time.Time
	// BuildAttempts counts the builds claimed so far.
	BuildAttempts int
	DurationS     float64
	SizeBytes     int64
	LostS         float64
	FailureReason *string
	Renditions    []AssetRendition
	Poster        string // key of the poster, "" for none
	// DeleteAfterDays is the stream's retention when the asset started;
	// DeleteAfter is when retention deletes it (nil: never).
	DeleteAfterDays *int
	DeleteAfter     *time.Time
	DeletedAt       *time.Time
	// LastToken is the fencing token of the last accepted report (nil: none
	// yet); FinalToken that of the last final report.
	LastToken  *int64
	FinalToken *int64
	UpdatedAt  time.Time
}

// Recording reports whether the asset still takes reports: recording, or
// processing and not being built yet.
func (a Asset) Recording() bool {
	return a.Status == job.AssetRecording || (a.Status == job.AssetProcessing && a.BuildClaimedAt == nil)
}

// AssetRendition is one rendition of a built asset.
type AssetRendition struct {
	Name      string `json:"name"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	Bandwidth int    `json:"bandwidth,omitempty"`
	Codec     string `json:"codec"`
	Audio     bool   `json:"audio,omitempty"`
}

func assetFromRow(r dbq.Asset) (Asset, error) {
	a := Asset{ID: r.ID, StreamID: r.StreamID, Status: r.Status, CreatedAt: r.CreatedAt, EndedAt: r.EndedAt,
		ReadyAt: r.ReadyAt, FinalizeAfter: r.FinalizeAfter, BuildClaimedAt: r.BuildClaimedAt, BuildAttempts: int(r.BuildAttempts), DurationS: r.DurationS, SizeBytes: r.SizeBytes,
		LostS: r.LostS, FailureReason: r.FailureReason, Poster: deref(r.Poster),
		DeleteAfterDays: intPtr(r.DeleteAfterDays), DeleteAfter: r.DeleteAfter, DeletedAt: r.DeletedAt,
		LastToken: r.LastToken, FinalToken: r.FinalToken, UpdatedAt: r.UpdatedAt}
	if err := json.Unmarshal(r.Renditions, &a.Renditions); err != nil {
		return Asset{}, fmt.Errorf("decoding the renditions of asset %s: %w", r.ID, err)
	}
	return a, nil
}

// assetsFromRows converts rows and loads their session ids.
func assetsFromRows(ctx context.Context, q *dbq.Queries, rows []dbq.Asset) ([]Asset, error) {
	out := make([]Asset, len(rows))
	ids := make([]uuid.UUID, len(rows))
	byID := make(map[uuid.UUID]*Asset, len(rows))
	for i, r := range rows {
		a, err := assetFromRow(r)
		if err != nil {
			return nil, err
		}
		out[i], ids[i] = a, r.ID
		byID[r.ID] = &out[i]
	}
	if len(ids) == 0 {
		return out, nil
	}
	links, err := q.ListAssetSessionIDs(ctx, ids)
	if err != nil {
		return nil, interpretError(err)
	}
	for _, l := range links {
		a := byID[l.AssetID]
		a.SessionIDs = append(a.SessionIDs, l.SessionID)
	}
	return out, nil
}

func assetFrom(ctx context.Context, q *dbq.Queries, row dbq.Asset, err error) (Asset, error) {
	if err != nil {
		return Asset{}, interpretError(err)
	}
	as, err := assetsFromRows(ctx, q, []dbq.Asset{row})
	if err != nil {
		return Asset{}, err
	}
	return as[0], nil
}

// CreateSessionAsset creates the asset recording a session, with the
// stream's retention (deleteAfterDays, nil: keep). Call it in the
// transaction that opens the session (InTx).
func (s *Store) CreateSessionAsset(ctx context.Context, streamID, sessionID uuid.UUID, deleteAfterDays *int) (Asset, error) {
	var out Asset
	err := s.tx(ctx, func(q *dbq.Queries) error {
		row, err := q.InsertAsset(ctx, dbq.InsertAssetParams{ID: newID(), StreamID: streamID, DeleteAfterDays: int32Ptr(deleteAfterDays)})
		if err != nil {
			return interpretError(err)
		}
		if err := q.InsertAssetSession(ctx, dbq.InsertAssetSessionParams{AssetID: row.ID, SessionID: sessionID}); err != nil {
			return interpretError(err)
		}
		out, err = assetFrom(ctx, q, row, nil)
		return err
	})
	if err != nil {
		return Asset{}, fmt.Errorf("creating the asset of session %s: %w", sessionID, err)
	}
	return out, nil
}

// GetAsset returns the asset with id.
func (s *Store) GetAsset(ctx context.Context, id uuid.UUID) (Asset, error) {
	row, err := s.q.GetAsset(ctx, id)
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, fmt.Errorf("loading asset %s: %w", id, err)
	}
	return a, nil
}

// LockAsset returns the asset with id and locks its row until the end of
// the transaction (call it on the Store of an InTx).
func (s *Store) LockAsset(ctx context.Context, id uuid.UUID) (Asset, error) {
	row, err := s.q.LockAsset(ctx, id)
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, fmt.Errorf("locking asset %s: %w", id, err)
	}
	return a, nil
}

// AssetOfSession returns the asset recording a session, or ErrNotFound when
// the session does not record.
func (s *Store) AssetOfSession(ctx context.Context, sessionID uuid.UUID) (Asset, error) {
	row, err := s.q.GetAssetOfSession(ctx, sessionID)
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, fmt.Errorf("loading the asset of session %s: %w", sessionID, err)
	}
	return a, nil
}

// ListAssets returns a page of assets ordered by id, of one stream when
// streamID is not nil, and the cursor of the next page.
func (s *Store) ListAssets(ctx context.Context, streamID *uuid.UUID, page Page) ([]Asset, *uuid.UUID, error) {
	rows, err := s.q.ListAssets(ctx, dbq.ListAssetsParams{StreamID: streamID, After: page.After, MaxRows: page.maxRows()})
	if err != nil {
		return nil, nil, fmt.Errorf("listing assets: %w", interpretError(err))
	}
	out, err := assetsFromRows(ctx, s.q, rows)
	if err != nil {
		return nil, nil, fmt.Errorf("listing assets: %w", err)
	}
	items, next := paginate(out, page.Limit, func(a Asset) uuid.UUID { return a.ID })
	return items, next, nil
}

// Recorded is what AddRecorded registers: the objects and losses of one
// accepted report.
type Recorded struct {
	AssetID uuid.UUID
	Token   int64 // the reporting lease's fencing token
	Final   bool
	Objects []job.RecordedObject
	Lost    []job.LostSegment
}

// AddRecorded registers an accepted report's objects (once per key: a
// retried report adds nothing) and lost segments, and records its token as
// the asset's last (and, with Final, its final one; a final report makes a
// processing asset due at once). It returns how many objects were new. The
// caller checked the report and holds the asset's lock (LockAsset).
func (s *Store) AddRecorded(ctx context.Context, r Recorded) (int, error) {
	added := 0
	err := s.tx(ctx, func(q *dbq.Queries) error {
		for _, o := range r.Objects {
			var track []byte
			if o.Track != nil {
				var err error
				if track, err = json.Marshal(o.Track); err != nil {
					return err
				}
			}
			var start *time.Time
			if !o.Start.IsZero() {
				start = &o.Start
			}
			n, err := q.InsertAssetObject(ctx, dbq.InsertAssetObjectParams{AssetID: r.AssetID, Kind: o.Kind, Rendition: o.Rendition,
				Key: o.Key, Size: o.Size, Token: r.Token, Run: int32(o.Run), Number: int64(o.Number), Init: o.Init,
				Start: start, DurationS: o.DurationS, MediaStart: int64(o.MediaStart), Track: track,
				Width: int32(o.Width), Height: int32(o.Height)})
			if err != nil {
				return interpretError(err)
			}
			added += int(n)
		}
		for _, l := range r.Lost {
			var start *time.Time
			if !l.Start.IsZero() {
				start = &l.Start
			}
			err := q.InsertAssetLostSegment(ctx, dbq.InsertAssetLostSegmentParams{AssetID: r.AssetID, Token: r.Token,
				Rendition: l.Rendition, Number: int64(l.Number), Start: start, DurationS: l.DurationS, Reason: l.Reason})
			if err != nil {
				return interpretError(err)
			}
		}
		return interpretError(q.SetAssetReported(ctx, dbq.SetAssetReportedParams{ID: r.AssetID, Token: r.Token, Final: r.Final}))
	})
	if err != nil {
		return 0, fmt.Errorf("registering recorded objects of asset %s: %w", r.AssetID, err)
	}
	return added, nil
}

// AssetObjects returns an asset's objects in accepted order.
func (s *Store) AssetObjects(ctx context.Context, id uuid.UUID) ([]job.RecordedObject, error) {
	rows, err := s.q.ListAssetObjects(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("listing the objects of asset %s: %w", id, interpretError(err))
	}
	out := make([]job.RecordedObject, len(rows))
	for i, r := range rows {
		o := job.RecordedObject{Kind: r.Kind, Rendition: r.Rendition, Key: r.Key, Size: r.Size, Run: int(r.Run),
			Number: uint64(r.Number), Init: r.Init, DurationS: r.DurationS, MediaStart: uint64(r.MediaStart),
			Width: int(r.Width), Height: int(r.Height)}
		if r.Start != nil {
			o.Start = r.Start.UTC()
		}
		if len(r.Track) > 0 {
			o.Track = &job.RecordedTrack{}
			if err := json.Unmarshal(r.Track, o.Track); err != nil {
				return nil, fmt.Errorf("decoding the track of %s: %w", r.Key, err)
			}
		}
		out[i] = o
	}
	return out, nil
}

// AssetLost returns the segments an asset's workers reported lost.
func (s *Store) AssetLost(ctx context.Context, id uuid.UUID) ([]job.LostSegment, error) {
	rows, err := s.q.ListAssetLostSegments(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("listing the lost segments of asset %s: %w", id, interpretError(err))
	}
	out := make([]job.LostSegment, len(rows))
	for i, r := range rows {
		out[i] = job.LostSegment{Rendition: r.Rendition, Number: uint64(r.Number), DurationS: r.DurationS, Reason: r.Reason}
		if r.Start != nil {
			out[i].Start = r.Start.UTC()
		}
	}
	return out, nil
}

// AssetThumbnails returns an asset's thumbnails in time order, each with its
// offset from the start of the asset's first segment (0 for one taken
// before it).
func (s *Store) AssetThumbnails(ctx context.Context, id uuid.UUID) ([]job.VODThumbnail, error) {
	first, err := s.q.FirstAssetSegmentStart(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("loading the start of asset %s: %w", id, interpretError(err))
	}
	rows, err := s.q.ListAssetThumbnails(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("listing the thumbnails of asset %s: %w", id, interpretError(err))
	}
	if first.Unix() == 0 && len(rows) > 0 && rows[0].Start != nil {
		first = *rows[0].Start // no segment: offsets from the first thumbnail
	}
	out := make([]job.VODThumbnail, 0, len(rows))
	for _, r := range rows {
		th := job.VODThumbnail{Key: r.Key}
		if r.Start != nil {
			th.OffsetS = max(r.Start.Sub(first).Seconds(), 0)
		}
		out = append(out, th)
	}
	return out, nil
}

// EndSessionAsset marks the asset of a session that is over for good
// processing: it is built once its last accepted lease sent a final report
// (at once if it did already), or delay from now. ok is false when the
// session records no asset or its asset is not recording any more. Call it
// in the transaction that records the session's end.
func (s *Store) EndSessionAsset(ctx context.Context, sessionID uuid.UUID, delay time.Duration) (Asset, bool, error) {
	cur, err := s.q.GetAssetOfSession(ctx, sessionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Asset{}, false, nil
	}
	if err != nil {
		return Asset{}, false, fmt.Errorf("ending the asset of session %s: %w", sessionID, interpretError(err))
	}
	row, err := s.q.EndAsset(ctx, dbq.EndAssetParams{ID: cur.ID, DelayMs: delay.Milliseconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		return Asset{}, false, nil
	}
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, false, fmt.Errorf("ending asset %s: %w", cur.ID, err)
	}
	return a, true, nil
}

// ClaimDueAssets claims up to max processing assets due to be built. Each
// is claimed by one caller, even across API replicas, for timeout: a claim
// older than that (its builder died) is claimed again.
func (s *Store) ClaimDueAssets(ctx context.Context, max int, timeout time.Duration) ([]Asset, error) {
	rows, err := s.q.ClaimDueAssets(ctx, dbq.ClaimDueAssetsParams{MaxRows: int32(max), TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		return nil, fmt.Errorf("claiming due assets: %w", interpretError(err))
	}
	out, err := assetsFromRows(ctx, s.q, rows)
	if err != nil {
		return nil, fmt.Errorf("claiming due assets: %w", err)
	}
	return out, nil
}

// ClaimAsset claims the build of one asset; ok is false when it is not due
// or is claimed already.
func (s *Store) ClaimAsset(ctx context.Context, id uuid.UUID, timeout time.Duration) (Asset, bool, error) {
	row, err := s.q.ClaimAsset(ctx, dbq.ClaimAssetParams{ID: id, TimeoutMs: timeout.Milliseconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		return Asset{}, false, nil
	}
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, false, fmt.Errorf("claiming asset %s: %w", id, err)
	}
	return a, true, nil
}

// AssetBuilt is what a successful build produced.
type AssetBuilt struct {
	DurationS  float64
	SizeBytes  int64
	LostS      float64
	Renditions []AssetRendition
	Poster     string
}

// SetAssetReady marks a processing asset ready with its build's results and
// starts its retention; ok is false when it is not processing any more.
func (s *Store) SetAssetReady(ctx context.Context, id uuid.UUID, b AssetBuilt) (Asset, bool, error) {
	rends := b.Renditions
	if rends == nil {
		rends = []AssetRendition{}
	}
	raw, err := json.Marshal(rends)
	if err != nil {
		return Asset{}, false, err
	}
	row, err := s.q.SetAssetReady(ctx, dbq.SetAssetReadyParams{ID: id, DurationS: b.DurationS, SizeBytes: b.SizeBytes,
		LostS: b.LostS, Renditions: raw, Poster: nonZero(b.Poster)})
	if errors.Is(err, pgx.ErrNoRows) {
		return Asset{}, false, nil
	}
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, false, fmt.Errorf("marking asset %s ready: %w", id, err)
	}
	return a, true, nil
}

// SetAssetFailed marks a processing asset failed with a reason (and what
// is known of its size and losses) and starts its retention; ok is false
// when it is not processing any more.
func (s *Store) SetAssetFailed(ctx context.Context, id uuid.UUID, reason string, lostS float64, sizeBytes int64) (Asset, bool, error) {
	row, err := s.q.SetAssetFailed(ctx, dbq.SetAssetFailedParams{ID: id, FailureReason: &reason, LostS: lostS, SizeBytes: sizeBytes})
	if errors.Is(err, pgx.ErrNoRows) {
		return Asset{}, false, nil
	}
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, false, fmt.Errorf("marking asset %s failed: %w", id, err)
	}
	return a, true, nil
}

// MarkAssetDeleted marks an asset deleted and forgets its objects (the
// caller removed them from the store first); ok is false when it was
// deleted already.
func (s *Store) MarkAssetDeleted(ctx context.Context, id uuid.UUID) (Asset, bool, error) {
	var (
		out Asset
		ok  bool
	)
	err := s.tx(ctx, func(q *dbq.Queries) error {
		row, err := q.SetAssetDeleted(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if out, err = assetFrom(ctx, q, row, err); err != nil {
			return err
		}
		ok = true
		return interpretError(q.DeleteAssetObjects(ctx, id))
	})
	if err != nil {
		return Asset{}, false, fmt.Errorf("marking asset %s deleted: %w", id, err)
	}
	return out, ok, nil
}

// ExpiredAssets returns up to max ready or failed assets whose retention
// passed, the longest expired first.
func (s *Store) ExpiredAssets(ctx context.Context, max int) ([]Asset, error) {
	rows, err := s.q.ListExpiredAssets(ctx, int32(max))
	if err != nil {
		return nil, fmt.Errorf("listing expired assets: %w", interpretError(err))
	}
	out, err := assetsFromRows(ctx, s.q, rows)
	if err != nil {
		return nil, fmt.Errorf("listing expired assets: %w", err)
	}
	return out, nil
}

// EndStreamAssets marks the recording assets of a stream about to be
// deleted processing, due delay from now, and returns how many it marked:
// their sessions are deleted with the stream, so their end is never
// recorded otherwise. Call it in the transaction that deletes the stream.
func (s *Store) EndStreamAssets(ctx context.Context, streamID uuid.UUID, delay time.Duration) (int, error) {
	ids, err := s.q.EndStreamAssets(ctx, dbq.EndStreamAssetsParams{StreamID: streamID, DelayMs: delay.Milliseconds()})
	if err != nil {
		return 0, fmt.Errorf("ending the assets of stream %s: %w", streamID, interpretError(err))
	}
	return len(ids), nil
}

// RetryAssetBuild gives a failed build's claim back, to be claimed again
// delay from now, and keeps the reason; ok is false when the asset is not
// processing any more.
func (s *Store) RetryAssetBuild(ctx context.Context, id uuid.UUID, reason string, delay time.Duration) (Asset, bool, error) {
	row, err := s.q.RetryAssetBuild(ctx, dbq.RetryAssetBuildParams{ID: id, DelayMs: delay.Milliseconds(), FailureReason: &reason})
	if errors.Is(err, pgx.ErrNoRows) {
		return Asset{}, false, nil
	}
	a, err := assetFrom(ctx, s.q, row, err)
	if err != nil {
		return Asset{}, false, fmt.Errorf("giving the build of asset %s back: %w", id, err)
	}
	return a, true, nil
}
