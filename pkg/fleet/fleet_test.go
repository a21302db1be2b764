package fleet_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit"
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
	// A long interval: nothing ages or expires by itself during the test;
	// the test ages the heartbeat by shortening its live key's lifetime,
	// which is what List reads the state from.
	r := setup(t, fleet.Config{Interval: time.Minute})
	w := worker("w1")
	require.NoError(t, r.Heartbeat(t.Context(), w))

	got, ok := stateOf(t, r, "w1")
	require.True(t, ok)
	require.Equal(t, fleet.StateUp, got.State)
	require.Equal(t, w.Host, got.Host)
	require.Equal(t, w.Encoders, got.Encoders)
	require.Equal(t, w.Capacity, got.Capacity)
	require.True(t, w.StartedAt.Equal(got.StartedAt))
	require.WithinDuration(t, time.Now(), got.LastSeen, time.Minute)

	rdb, key := r.AgeForTest("w1")
	// 2.5 intervals since the heartbeat (TTL 3 min, 30 s left): late, not expired.
	require.NoError(t, rdb.PExpire(t.Context(), key, 30*time.Second).Err())
	got, _ = stateOf(t, r, "w1")
	require.Equal(t, fleet.StateLagging, got.State)

	require.NoError(t, rdb.PExpire(t.Context(), key, time.Millisecond).Err())
	require.Eventually(t, func() bool {
		got, ok = stateOf(t, r, "w1")
		return ok && got.State == fleet.StateGone
	}, 30*time.Second, 10*time.Millisecond, "gone workers stay listed")
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
	}, 30*time.Second, 20*time.Millisecond)
	load.Store(3)
	require.Eventually(t, func() bool {
		w, _ := stateOf(t, r, "w2")
		return w.Load == 3 && w.State == fleet.StateUp
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	w, ok := stateOf(t, r, "w2")
	require.True(t, ok)
	require.Equal(t, fleet.StateGone, w.State, "a stopped worker is gone at once")
}

func TestGoneWorkersArePruned(t *testing.T) {
	t.Parallel()
	// A long interval keeps "new" up however slow the machine; "old" is gone
	// (deregistered) and, after the retention, pruned.
	r := setup(t, fleet.Config{Interval: time.Minute, GoneRetention: 300 * time.Millisecond})
	require.NoError(t, r.Heartbeat(t.Context(), worker("old")))
	require.NoError(t, r.Deregister(t.Context(), "old"))
	time.Sleep(400 * time.Millisecond) // past the retention
	require.NoError(t, r.Heartbeat(t.Context(), worker("new")))
	list, err := r.List(t.Context())
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "new", list[0].ID)
	require.Equal(t, fleet.StateUp, list[0].State)
}
