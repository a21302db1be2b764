package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/services/internal/event"
	"github.com/dionysia/dionysia/services/internal/store"
)

// WorkerEvents records worker.up and worker.lost from what the dispatcher
// sees of the fleet (dispatch.Config.ObserveFleet). The workers_seen table
// makes each transition recorded once however many API replicas observe the
// fleet: only the transaction that flips a worker's row records its event.
//
// A worker is up while its heartbeat key lives (fleet states up and
// lagging); it is lost when the key expired or it deregistered (gone), or
// when the fleet stopped listing it.
type WorkerEvents struct {
	Store  *store.Store
	Logger *slog.Logger
}

// Observe records the transitions of one look at the fleet.
func (w *WorkerEvents) Observe(ctx context.Context, ws []fleet.WorkerStatus) {
	alive := make([]string, 0, len(ws))
	byID := make(map[string]fleet.WorkerStatus, len(ws))
	for _, x := range ws {
		byID[x.ID] = x
		if x.State != fleet.StateGone {
			alive = append(alive, x.ID)
		}
	}
	err := w.Store.InTx(ctx, func(tx *store.Store) error {
		up, err := tx.MarkWorkersUp(ctx, alive)
		if err != nil {
			return err
		}
		for _, u := range up {
			if err := appendWorkerEvent(ctx, tx, event.WorkerUp, byID, u); err != nil {
				return err
			}
		}
		lost, err := tx.MarkWorkersLost(ctx, alive)
		if err != nil {
			return err
		}
		for _, l := range lost {
			if err := appendWorkerEvent(ctx, tx, event.WorkerLost, byID, l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil && w.Logger != nil {
		w.Logger.WarnContext(ctx, "recording worker up/lost events; the next look retries", "err", err)
	}
}

func appendWorkerEvent(ctx context.Context, tx *store.Store, typ string, byID map[string]fleet.WorkerStatus, seen store.WorkerSeen) error {
	status, ok := byID[seen.ID]
	if !ok {
		// No longer listed by the fleet: all that is known is its id.
		status = fleet.WorkerStatus{Worker: fleet.Worker{ID: seen.ID}, State: fleet.StateGone}
	}
	data := EventData{}.Worker(status)
	if typ == event.WorkerLost {
		lost := seen.LostAt
		if lost == nil {
			now := time.Now()
			lost = &now
		}
		data.LostAt = lost
	}
	_, err := tx.AppendEvent(ctx, store.NewEvent{Type: typ, Data: data})
	return err
}
