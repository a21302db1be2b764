package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/dionysia/dionysia/services/internal/vod"
	"github.com/google/uuid"
)

// Defaults of AssetFinalizer.
const (
	DefaultFinalizeInterval = time.Second
	// DefaultBuildTimeout bounds one build; a claim older than that (its
	// replica died building) is taken over by another.
	DefaultBuildTimeout = 10 * time.Minute
	finalizeBatch       = 4
	// DefaultBuildAttempts is how many times a build that failed (the store
	// unreachable, say) is tried before the asset is failed.
	DefaultBuildAttempts = 5
	// DefaultRetryDelay is the wait before the first retry; it grows
	// linearly with the attempts.
	DefaultRetryDelay = 10 * time.Second
)

// AssetFinalizer builds the assets whose session is over (docs/recording.md):
// a processing asset is due once the last accepted lease sent its final
// report, or when its finalize_after passed. Every API replica runs one; a
// due asset is claimed by one of them (store.ClaimDueAssets). A final report
// kicks it (Kick) instead of waiting for the next pass.
//
// vod.Build writes the VOD files; its result makes the asset ready. Its
// error is retried (Attempts builds, Retry apart and more) before the asset
// is failed; no segment at all fails it at once. Ready and failed are
// recorded with their event in the same transaction as the status.
type AssetFinalizer struct {
	Store    *store.Store
	Objects  storage.Store
	Data     EventData
	Interval time.Duration // default DefaultFinalizeInterval
	Timeout  time.Duration // default DefaultBuildTimeout
	Attempts int           // builds tried before the asset fails; default DefaultBuildAttempts
	Retry    time.Duration // wait before the first retry; default DefaultRetryDelay
	Logger   *slog.Logger

	kicks chan uuid.UUID
}

// NewAssetFinalizer returns a finalizer with its defaults (log nil: discard).
func NewAssetFinalizer(st *store.Store, objects storage.Store, data EventData, log *slog.Logger) *AssetFinalizer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AssetFinalizer{Store: st, Objects: objects, Data: data, Interval: DefaultFinalizeInterval,
		Timeout: DefaultBuildTimeout, Attempts: DefaultBuildAttempts, Retry: DefaultRetryDelay, Logger: log,
		kicks: make(chan uuid.UUID, 64)}
}

// Kick asks Run to build an asset now if it is due (a final report came).
// It never blocks: a kick that does not fit waits for the next pass.
func (f *AssetFinalizer) Kick(id uuid.UUID) {
	select {
	case f.kicks <- id:
	default:
	}
}

// Run builds due assets every Interval, and kicked ones at once, until ctx
// ends. It returns ctx's error.
func (f *AssetFinalizer) Run(ctx context.Context) error {
	t := time.NewTicker(f.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case id := <-f.kicks:
			a, ok, err := f.Store.ClaimAsset(ctx, id, f.Timeout)
			if err != nil {
				f.warn(ctx, "claiming a kicked asset; the next pass retries", err)
			} else if ok {
				f.build(ctx, a)
			}
		case <-t.C:
			f.FinalizeDue(ctx)
		}
	}
}

// FinalizeDue claims and builds the due assets, a batch at a time, and
// returns how many it built (ready or failed).
func (f *AssetFinalizer) FinalizeDue(ctx context.Context) int {
	n := 0
	for ctx.Err() == nil {
		due, err := f.Store.ClaimDueAssets(ctx, finalizeBatch, f.Timeout)
		if err != nil {
			f.warn(ctx, "claiming due assets; the next pass retries", err)
			return n
		}
		for _, a := range due {
			if f.build(ctx, a) {
				n++
			}
		}
		if len(due) < finalizeBatch {
			return n
		}
	}
	return n
}

// build builds one claimed asset and records the outcome. It returns false
// when nothing was recorded (the process is stopping, or the database
// failed): the claim then times out and the asset is built again.
func (f *AssetFinalizer) build(ctx context.Context, a store.Asset) bool {
	log := f.Logger.With("asset_id", a.ID, "stream_id", a.StreamID)
	objects, err := f.Store.AssetObjects(ctx, a.ID)
	if err != nil {
		f.warn(ctx, "loading the objects of an asset to build", err)
		return false
	}
	lost, err := f.Store.AssetLost(ctx, a.ID)
	if err != nil {
		f.warn(ctx, "loading the lost segments of an asset to build", err)
		return false
	}
	var size int64
	segments := 0
	for _, o := range objects {
		size += o.Size
		if o.Kind == job.ObjectSegment {
			segments++
		}
	}
	var lostS float64
	for _, l := range lost {
		lostS += l.DurationS
	}
	if segments == 0 {
		return f.fail(ctx, log, a, "no segment was recorded", lostS, size)
	}
	buildCtx, cancel := context.WithTimeout(ctx, f.Timeout)
	res, err := vod.Build(buildCtx, f.Objects, vod.Input{AssetID: a.ID, Objects: objects, Lost: lost})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return false // stopping: another pass (here or elsewhere) builds it again
		}
		reason := fmt.Sprintf("building the VOD files: %v", err)
		if a.BuildAttempts < f.Attempts {
			delay := time.Duration(a.BuildAttempts) * f.Retry
			if _, _, rerr := f.Store.RetryAssetBuild(ctx, a.ID, reason, delay); rerr != nil {
				f.warn(ctx, "giving a failed build back; it is retried when its claim times out", rerr)
				return false
			}
			log.WarnContext(ctx, "building a recording failed; retrying", "attempt", a.BuildAttempts, "of", f.Attempts,
				"retry_in", delay, "err", err)
			return false
		}
		return f.fail(ctx, log, a, reason, lostS, size)
	}
	built := store.AssetBuilt{DurationS: res.DurationS, SizeBytes: res.SizeBytes, LostS: res.LostS, Poster: res.Poster}
	for _, r := range res.Renditions {
		built.Renditions = append(built.Renditions, store.AssetRendition{Name: r.Name, Width: r.Width, Height: r.Height,
			Bandwidth: r.Bandwidth, Codec: r.Codec, Audio: r.Audio})
	}
	err = f.Store.InTx(ctx, func(tx *store.Store) error {
		ready, ok, err := tx.SetAssetReady(ctx, a.ID, built)
		if err != nil || !ok {
			return err
		}
		_, err = tx.AppendEvent(ctx, store.NewEvent{Type: event.RecordingReady, StreamID: &ready.StreamID, Data: f.Data.Asset(ready)})
		return err
	})
	if err != nil {
		f.warn(ctx, "recording a built asset; it is built again", err)
		return false
	}
	log.InfoContext(ctx, "recording ready", "duration_s", res.DurationS, "size_bytes", res.SizeBytes, "lost_s", res.LostS,
		"renditions", len(res.Renditions))
	return true
}

func (f *AssetFinalizer) fail(ctx context.Context, log *slog.Logger, a store.Asset, reason string, lostS float64, size int64) bool {
	err := f.Store.InTx(ctx, func(tx *store.Store) error {
		failed, ok, err := tx.SetAssetFailed(ctx, a.ID, reason, lostS, size)
		if err != nil || !ok {
			return err
		}
		_, err = tx.AppendEvent(ctx, store.NewEvent{Type: event.RecordingFailed, StreamID: &failed.StreamID, Data: f.Data.Asset(failed)})
		return err
	})
	if err != nil {
		f.warn(ctx, "recording a failed asset; it is built again", err)
		return false
	}
	log.WarnContext(ctx, "recording failed", "reason", reason, "lost_s", lostS)
	return true
}

func (f *AssetFinalizer) warn(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		f.Logger.WarnContext(ctx, msg, "err", err)
	}
}
