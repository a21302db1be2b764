package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/services/internal/store"
)

// Defaults of EventPruner.
const (
	DefaultPruneInterval = 5 * time.Minute
	defaultPruneBatch    = 1000
)

// EventPruner deletes the events older than the retention from the event
// log (their webhook deliveries with them), in batches, every Interval.
// Every API replica runs one; they delete disjoint rows or nothing.
type EventPruner struct {
	Store     *store.Store
	Retention time.Duration // config.API.EventRetention
	Interval  time.Duration // default DefaultPruneInterval
	Batch     int           // rows per DELETE; default 1000
	Logger    *slog.Logger
}

// Run prunes at once, then every Interval, until ctx ends. It returns ctx's
// error.
func (p *EventPruner) Run(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultPruneInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.PruneOnce(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PruneOnce deletes every event older than the retention, a batch at a time,
// and returns how many it deleted. A failure is logged; the next pass
// retries.
func (p *EventPruner) PruneOnce(ctx context.Context) int64 {
	batch := p.Batch
	if batch <= 0 {
		batch = defaultPruneBatch
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	before := time.Now().Add(-p.Retention)
	var total int64
	for ctx.Err() == nil {
		n, err := p.Store.PruneEvents(ctx, before, batch)
		if err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "pruning the event log; the next pass retries", "err", err)
			}
			break
		}
		total += n
		if n < int64(batch) {
			break
		}
	}
	if total > 0 {
		log.InfoContext(ctx, "pruned the event log", "deleted", total, "older_than", before.UTC().Format(time.RFC3339),
			"retention", p.Retention)
	}
	return total
}
