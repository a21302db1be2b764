package store

import (
	"context"
	"fmt"
	"time"

	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
)

// WorkerSeen is a worker the platform has seen: what worker.up and
// worker.lost are recorded from, once per transition however many API
// replicas watch the fleet.
type WorkerSeen struct {
	ID     string
	UpAt   time.Time  // when it was last seen joining
	LostAt *time.Time // when it was declared lost; nil: up
}

func workersSeenFromRows(rows []dbq.WorkersSeen) []WorkerSeen {
	out := make([]WorkerSeen, len(rows))
	for i, r := range rows {
		out[i] = WorkerSeen{ID: r.ID, UpAt: r.UpAt, LostAt: r.LostAt}
	}
	return out
}

// MarkWorkersUp records that the workers of ids are up and returns those
// that were not: seen for the first time, or lost before. Each transition is
// returned to one caller only; the caller appends worker.up for each in the
// same transaction (InTx).
func (s *Store) MarkWorkersUp(ctx context.Context, ids []string) ([]WorkerSeen, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.q.MarkWorkersUp(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("recording workers up: %w", interpretError(err))
	}
	return workersSeenFromRows(rows), nil
}

// MarkWorkersLost records that every worker up and not in alive is lost, and
// returns them. Each transition is returned to one caller only; the caller
// appends worker.lost for each in the same transaction (InTx).
func (s *Store) MarkWorkersLost(ctx context.Context, alive []string) ([]WorkerSeen, error) {
	if alive == nil {
		alive = []string{}
	}
	rows, err := s.q.MarkWorkersLost(ctx, alive)
	if err != nil {
		return nil, fmt.Errorf("recording workers lost: %w", interpretError(err))
	}
	return workersSeenFromRows(rows), nil
}
