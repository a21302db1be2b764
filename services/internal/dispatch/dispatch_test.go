package dispatch_test

import (
	"context"
	"github.com/dionysia/dionysia/pkg/testkit"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/fleet"
	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/dionysia/dionysia/services/internal/config"
	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/dispatch"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/ingest"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

type testBundle struct {
	t      *testing.T
	ctx    context.Context
	st     *store.Store
	rdb    *redis.Client
	insp   *asynq.Inspector
	owners *ownership.Store
	disp   *dispatch.Dispatcher
	reg    *prometheus.Registry
	tc     ingest.Transcodes
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	// asynq has no key prefix: the test gets a Redis database of its own.
	r := testkit.RedisDatabase(t)
	rdb, prefix := r.Client, r.Prefix
	st := store.New(dbtest.New(t))
	b := &testBundle{t: t, ctx: ctx, st: st, rdb: rdb, insp: asynq.NewInspectorFromRedisClient(rdb),
		owners: ownership.New(rdb, ownership.Config{Prefix: prefix}), reg: prometheus.NewRegistry(),
		tc: ingest.Transcodes{Store: st, EdgeSecret: "secret"}}
	var err error
	b.disp, err = dispatch.New(rdb, fleet.New(rdb, fleet.Config{Prefix: prefix}), b.owners, b.tc, dispatch.Config{
		Dispatch: config.Dispatch{Interval: 50 * time.Millisecond, Grace: 200 * time.Millisecond,
			MinInterval: 500 * time.Millisecond, FirstPickup: 400 * time.Millisecond},
		Prefix: prefix, ReconcileInterval: 300 * time.Millisecond, Registerer: b.reg,
	})
	require.NoError(t, err)
	return b
}

// run runs the watchdog until the test ends.
func (b *testBundle) run() {
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- b.disp.Run(ctx) }()
	b.t.Cleanup(func() {
		cancel()
		require.ErrorIs(b.t, <-done, context.Canceled)
	})
}

// liveSession opens a session of a new stream, as the edge's ready does.
func (b *testBundle) liveSession() job.Transcode {
	b.t.Helper()
	p, err := b.st.GetProfileByName(b.ctx, ladder.Builtin720p)
	require.NoError(b.t, err)
	s, err := b.st.CreateStream(b.ctx, store.NewStream{Name: "s", ProfileID: p.ID, Hardware: job.HardwareCPU})
	require.NoError(b.t, err)
	o, err := b.st.OpenSession(b.ctx, store.NewSession{StreamID: s.ID, EdgeID: "e", SourceID: uuid.NewString(),
		Edge: edgeapi.EdgeInfo{ID: "e", PublicHost: "dispatch-test", RTMPPort: 1935}})
	require.NoError(b.t, err)
	tr, ok, err := b.tc.Transcode(b.ctx, o.Session.ID)
	require.NoError(b.t, err)
	require.True(b.t, ok)
	b.t.Cleanup(func() {
		for _, id := range []string{"", ":1", ":2", ":3"} {
			_ = b.insp.DeleteTask(job.QueueCPU, job.TaskID(tr.SessionID)+id)
		}
	})
	return tr
}

func (b *testBundle) hasTask(id string) bool {
	_, err := b.insp.GetTaskInfo(job.QueueCPU, id)
	if err != nil {
		require.ErrorIs(b.t, err, asynq.ErrTaskNotFound)
		return false
	}
	return true
}

func TestDispatchIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := b.liveSession()
	require.NoError(t, b.disp.Dispatch(b.ctx, tr))
	require.NoError(t, b.disp.Dispatch(b.ctx, tr), "a second dispatch of the session is a no-op")
	info, err := b.insp.GetTaskInfo(job.QueueCPU, job.TaskID(tr.SessionID))
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStatePending, info.State)
	require.Equal(t, job.Timeout, info.Timeout)
	require.Equal(t, dispatch.DefaultMaxRetry, info.MaxRetry)
	got, err := job.Unmarshal(info.Payload)
	require.NoError(t, err)
	require.Equal(t, tr.SessionID, got.SessionID)
	require.False(t, got.EnqueuedAt.IsZero())
	st, err := b.owners.State(b.ctx, tr.StreamID.String())
	require.NoError(t, err)
	require.Equal(t, tr.SessionID.String(), st.Assignment.SessionID)
	require.Equal(t, 1.0, sumOf(t, b.reg, "dionysia_dispatch_jobs_enqueued_total"))
}

// sumOf sums every series of a counter.
func sumOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestWatchdogRedispatchesWhenTheOwnerIsGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := b.liveSession()
	require.NoError(t, b.disp.Dispatch(b.ctx, tr))
	b.run()

	// A worker takes the stream with a short lease and keeps it: nothing is enqueued.
	// The lease is long against the watchdog's interval, so a renewal that a
	// loaded machine delays never lets it lapse.
	worker := ownership.New(b.rdb, ownership.Config{Prefix: b.owners.Config().Prefix, TTL: 3 * time.Second})
	lease, err := worker.Acquire(b.ctx, tr.StreamID.String(), tr.SessionID.String(), ownership.Holder{WorkerID: "w-1"})
	require.NoError(t, err)
	for range 6 { // well past FirstPickup and MinInterval
		require.NoError(t, worker.Renew(b.ctx, lease))
		time.Sleep(250 * time.Millisecond)
	}
	require.False(t, b.hasTask(job.TaskID(tr.SessionID)+":1"), "an owned stream is never re-dispatched")

	// The worker dies (kill -9: no release, the lease expires).
	require.NoError(t, worker.Renew(b.ctx, lease))
	expired := time.Now().Add(3 * time.Second)
	require.Eventually(t, func() bool { return b.hasTask(job.TaskID(tr.SessionID) + ":1") }, 60*time.Second, 20*time.Millisecond)
	t.Logf("re-dispatched %s after the lease expired", time.Since(expired).Round(time.Millisecond))
	info, err := b.insp.GetTaskInfo(job.QueueCPU, job.TaskID(tr.SessionID)+":1")
	require.NoError(t, err)
	got, err := job.Unmarshal(info.Payload)
	require.NoError(t, err)
	require.Equal(t, tr.SessionID, got.SessionID)
	require.Equal(t, tr.Ladder, got.Ladder, "the snapshot the session started with")

	// Nobody takes the new task and it stays queued: no pile-up.
	time.Sleep(1200 * time.Millisecond)
	require.False(t, b.hasTask(job.TaskID(tr.SessionID)+":2"), "a queued task is not duplicated")
	require.Equal(t, 1.0, sumOf(t, b.reg, "dionysia_dispatch_redispatch_total"))
}

func TestWatchdogWaitsForAQueuedTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tr := b.liveSession()
	require.NoError(t, b.disp.Dispatch(b.ctx, tr))
	b.run()
	time.Sleep(1500 * time.Millisecond)
	require.False(t, b.hasTask(job.TaskID(tr.SessionID)+":1"), "the first task waits in the queue for a worker")

	// The task left the queue but no worker ever took the stream (it crashed
	// before taking ownership): dispatched again after FirstPickup.
	require.NoError(t, b.insp.DeleteTask(job.QueueCPU, job.TaskID(tr.SessionID)))
	require.Eventually(t, func() bool { return b.hasTask(job.TaskID(tr.SessionID) + ":1") }, 30*time.Second, 20*time.Millisecond)
}

func TestWatchdogDropsEndedSessionsAndRestoresLostAssignments(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ended := b.liveSession()
	require.NoError(t, b.disp.Dispatch(b.ctx, ended))
	require.NoError(t, b.insp.DeleteTask(job.QueueCPU, job.TaskID(ended.SessionID)))
	_, _, err := b.st.EndSession(b.ctx, ended.SessionID, edgeapi.EndPublisherDisconnected, "", 0)
	require.NoError(t, err)

	// Redis lost the assignment of a live session (never dispatched).
	lost := b.liveSession()
	b.run()

	require.Eventually(t, func() bool {
		st, err := b.owners.State(b.ctx, ended.StreamID.String())
		return err == nil && st.Assignment == nil
	}, 30*time.Second, 20*time.Millisecond, "the ended session's assignment is dropped")
	require.False(t, b.hasTask(job.TaskID(ended.SessionID)+":1"))

	require.Eventually(t, func() bool { return b.hasTask(job.TaskID(lost.SessionID) + ":1") }, 30*time.Second, 20*time.Millisecond,
		"the lost session is assigned again and dispatched")
	st, err := b.owners.State(b.ctx, lost.StreamID.String())
	require.NoError(t, err)
	require.Equal(t, lost.SessionID.String(), st.Assignment.SessionID)
}

func TestQueueChoice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.Equal(t, job.QueueGPU, b.disp.Queue(b.ctx, job.HardwareGPU))
	require.Equal(t, job.QueueCPU, b.disp.Queue(b.ctx, job.HardwareCPU))
	require.Equal(t, job.QueueCPU, b.disp.Queue(b.ctx, job.HardwareAuto), "no GPU worker")
}
