package fleet_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/testkit"
)

func setup(t *testing.T, cfg fleet.Config) *fleet.Registry {
	t.Helper()
	r := testkit.RedisPrefix(t)
	cfg.Prefix = r.Prefix
	return fleet.New(r.Client, cfg)
}

func worker(id string) fleet.Worker {
	return fleet.Worker{
		ID: id, Host: "host-" + id, OriginURL: "http://127.0.0.1:8090", Class: fleet.ClassCPU,
		Capacity: 4, Load: 1, Version: "test", Encoders: []string{"x264enc"}, StartedAt: time.Now().Truncate(time.Millisecond),
	}
}

func stateOf(t *testing.T, r *fleet.Registry, id string) (fleet.WorkerStatus, bool) {
	t.Helper()
	list, err := r.List(t.Context())
	require.NoError(t, err)
	for _, w := range list {
		if w.ID == id {
			return w, true
		}
	}
	return fleet.WorkerStatus{}, false
}

func TestHeartbeatStates(t *testing.T) {
	t.Parallel()
	r := setup(t, fleet.Config{Interval: 200 * time.Millisecond})
	w := worker("w1")
	require.NoError(t, r.Heartbeat(t.Context(), w))

	got, ok := stateOf(t, r, "w1")
	require.True(t, ok)
	require.Equal(t, fleet.StateUp, got.State)
	require.Equal(t, w.Host, got.Host)
	require.Equal(t, w.Encoders, got.Encoders)
	require.Equal(t, w.Capacity, got.Capacity)
	require.True(t, w.StartedAt.Equal(got.StartedAt))
	require.WithinDuration(t, time.Now(), got.LastSeen, time.Second)

	time.Sleep(450 * time.Millisecond) // > 2 intervals, < TTL (600 ms)
	got, _ = stateOf(t, r, "w1")
	require.Equal(t, fleet.StateLagging, got.State)

	time.Sleep(300 * time.Millisecond) // > TTL
	got, ok = stateOf(t, r, "w1")
	require.True(t, ok, "gone workers stay listed")
	require.Equal(t, fleet.StateGone, got.State)

	require.ErrorIs(t, r.Heartbeat(t.Context(), fleet.Worker{}), fleet.ErrInvalidWorker)
}

func TestRunUpdatesAndDeregisters(t *testing.T) {
	t.Parallel()
	r := setup(t, fleet.Config{Interval: 50 * time.Millisecond})
	var load atomic.Int64
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, func() fleet.Worker {
			w := worker("w2")
			w.Load = int(load.Load())
			return w
		})
	}()
	require.Eventually(t, func() bool {
		w, ok := stateOf(t, r, "w2")
		return ok && w.State == fleet.StateUp
	}, 2*time.Second, 20*time.Millisecond)
	load.Store(3)
	require.Eventually(t, func() bool {
		w, _ := stateOf(t, r, "w2")
		return w.Load == 3 && w.State == fleet.StateUp
	}, 2*time.Second, 20*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	w, ok := stateOf(t, r, "w2")
	require.True(t, ok)
	require.Equal(t, fleet.StateGone, w.State, "a stopped worker is gone at once")
}

func TestGoneWorkersArePruned(t *testing.T) {
	t.Parallel()
	r := setup(t, fleet.Config{Interval: 50 * time.Millisecond, GoneRetention: 300 * time.Millisecond})
	require.NoError(t, r.Heartbeat(t.Context(), worker("old")))
	time.Sleep(400 * time.Millisecond)
	require.NoError(t, r.Heartbeat(t.Context(), worker("new")))
	list, err := r.List(t.Context())
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "new", list[0].ID)
	require.Equal(t, fleet.StateUp, list[0].State)
}
