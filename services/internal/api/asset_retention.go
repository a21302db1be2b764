package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/pkg/storage"
	"github.com/dionysia/dionysia/services/internal/store"
)

// Defaults of AssetRetention.
const (
	DefaultRetentionInterval = time.Minute
	retentionBatch           = 100
)

// AssetRetention deletes the ready and failed assets whose delete_after
// passed (their stream's recording.delete_after_days after they were
// built), objects first, every Interval. Every API replica runs one: two
// deleting the same asset both empty its prefix, and only one records
// asset.deleted.
type AssetRetention struct {
	Store    *store.Store
	Objects  storage.Store
	Data     EventData
	Interval time.Duration // default DefaultRetentionInterval
	Logger   *slog.Logger  // nil: discard
}

// Run deletes expired assets at once, then every Interval, until ctx ends.
// It returns ctx's error.
func (r *AssetRetention) Run(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRetentionInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		r.DeleteExpired(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// DeleteExpired deletes the assets whose retention passed and returns how
// many it deleted. A failure is logged; the next pass retries.
func (r *AssetRetention) DeleteExpired(ctx context.Context) int {
	n := 0
	for ctx.Err() == nil {
		due, err := r.Store.ExpiredAssets(ctx, retentionBatch)
		if err != nil {
			r.warn(ctx, "listing expired assets; the next pass retries", err)
			return n
		}
		for _, a := range due {
			ok, err := DeleteAsset(ctx, r.Store, r.Objects, r.Data, a, "retention")
			if err != nil {
				r.warn(ctx, "deleting an expired asset; the next pass retries", err)
				return n
			}
			if ok {
				n++
				r.logger().InfoContext(ctx, "deleted an expired asset", "asset_id", a.ID, "stream_id", a.StreamID,
					"delete_after", a.DeleteAfter)
			}
		}
		if len(due) < retentionBatch {
			return n
		}
	}
	return n
}

func (r *AssetRetention) warn(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil {
		r.logger().WarnContext(ctx, msg, "err", err)
	}
}

func (r *AssetRetention) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}
