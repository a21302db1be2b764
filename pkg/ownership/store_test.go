package ownership_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/ownership"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit"
)

type testBundle struct {
	rdb    *redis.Client
	store  *ownership.Store
	prefix string
}

func setup(t *testing.T, cfg ownership.Config) *testBundle {
	t.Helper()
	r := testkit.RedisPrefix(t)
	cfg.Prefix = r.Prefix
	return &testBundle{rdb: r.Client, store: ownership.New(r.Client, cfg), prefix: r.Prefix}
}

func holder(worker string) ownership.Holder {
	return ownership.Holder{WorkerID: worker, OriginURL: "http://" + worker + ":8090"}
}

func TestAcquireRenewRelease(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{})
	ctx := t.Context()
	stream, session := uuid.NewString(), uuid.NewString()

	l, err := b.store.Acquire(ctx, stream, session, holder("w1"))
	require.NoError(t, err)
	require.Positive(t, l.Token)

	o, ok, err := b.store.Lookup(ctx, stream)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "w1", o.WorkerID)
	require.Equal(t, "http://w1:8090", o.OriginURL)
	require.Equal(t, session, o.SessionID)
	require.Equal(t, l.Token, o.Token)
	pttl, err := b.rdb.PTTL(ctx, b.store.OwnerKey(stream)).Result()
	require.NoError(t, err)
	require.Greater(t, pttl, 9*time.Second)

	_, err = b.store.Acquire(ctx, stream, uuid.NewString(), holder("w2"))
	var held *ownership.HeldError
	require.ErrorAs(t, err, &held)
	require.ErrorIs(t, err, ownership.ErrHeld)
	require.Equal(t, "w1", held.WorkerID)

	require.NoError(t, b.store.Renew(ctx, l))
	require.NoError(t, b.store.CheckToken(ctx, l))
	require.NoError(t, b.store.Release(ctx, l))
	_, ok, err = b.store.Lookup(ctx, stream)
	require.NoError(t, err)
	require.False(t, ok)
	require.ErrorIs(t, b.store.Release(ctx, l), ownership.ErrLost)
	require.ErrorIs(t, b.store.Renew(ctx, l), ownership.ErrLost)

	l2, err := b.store.Acquire(ctx, stream, session, holder("w2"))
	require.NoError(t, err)
	require.Greater(t, l2.Token, l.Token, "fencing tokens only grow")
}

// The scenario of the issue: A's lease expires, B takes the stream, and
// everything A still tries is refused.
func TestStaleOwnerIsFenced(t *testing.T) {
	t.Parallel()
	// Long enough for A to write before it expires, however loaded the machine.
	b := setup(t, ownership.Config{TTL: 2 * time.Second})
	ctx := t.Context()
	stream := uuid.NewString()
	progress := b.prefix + "stream:" + stream + ":progress"

	a, err := b.store.Acquire(ctx, stream, uuid.NewString(), holder("A"))
	require.NoError(t, err)
	reply, err := b.store.FencedDo(ctx, a, "HSET", progress, "last_segment", 1, "writer", "A")
	require.NoError(t, err)
	require.EqualValues(t, 2, reply)

	require.Eventually(t, func() bool {
		_, ok, err := b.store.Lookup(ctx, stream)
		return err == nil && !ok
	}, 30*time.Second, 20*time.Millisecond, "A's lease must expire")

	bl, err := b.store.Acquire(ctx, stream, uuid.NewString(), holder("B"))
	require.NoError(t, err)
	require.Greater(t, bl.Token, a.Token)
	_, err = b.store.FencedDo(ctx, bl, "HSET", progress, "last_segment", 7, "writer", "B")
	require.NoError(t, err)

	require.ErrorIs(t, b.store.Renew(ctx, a), ownership.ErrLost)
	require.ErrorIs(t, b.store.CheckToken(ctx, a), ownership.ErrLost)
	_, err = b.store.FencedDo(ctx, a, "HSET", progress, "last_segment", 2, "writer", "A")
	require.ErrorIs(t, err, ownership.ErrFenced)
	require.ErrorIs(t, b.store.Release(ctx, a), ownership.ErrLost)

	got, err := b.rdb.HGetAll(ctx, progress).Result()
	require.NoError(t, err)
	require.Equal(t, map[string]string{"last_segment": "7", "writer": "B"}, got)
	o, ok, err := b.store.Lookup(ctx, stream)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "B", o.WorkerID, "A's release must not remove B")
	require.Equal(t, bl.Token, o.Token)
}

func TestStaleOwnerIsFencedAfterRedisLostItsData(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{TTL: 10 * time.Second})
	ctx := t.Context()
	stream := uuid.NewString()
	progress := b.prefix + "stream:" + stream + ":progress"

	a, err := b.store.Acquire(ctx, stream, uuid.NewString(), holder("A"))
	require.NoError(t, err)
	// Redis loses everything about the stream (a restart without
	// persistence): the fence counter starts again, so B gets A's token.
	require.NoError(t, b.rdb.Del(ctx, b.store.OwnerKey(stream), b.store.FenceKey(stream)).Err())
	bl, err := b.store.Acquire(ctx, stream, uuid.NewString(), holder("B"))
	require.NoError(t, err)
	require.Equal(t, a.Token, bl.Token, "the counter restarted")

	require.ErrorIs(t, b.store.Renew(ctx, a), ownership.ErrLost, "equal tokens must not let A renew B's lease")
	require.ErrorIs(t, b.store.CheckToken(ctx, a), ownership.ErrLost)
	_, err = b.store.FencedDo(ctx, a, "HSET", progress, "writer", "A")
	require.ErrorIs(t, err, ownership.ErrFenced)
	require.ErrorIs(t, b.store.Release(ctx, a), ownership.ErrLost)
	require.NoError(t, b.store.Renew(ctx, bl))
	o, ok, err := b.store.Lookup(ctx, stream)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "B", o.WorkerID)
}

func TestSameWorkerReacquireFencesOldLease(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{})
	ctx := t.Context()
	stream := uuid.NewString()
	old, err := b.store.Acquire(ctx, stream, uuid.NewString(), holder("w1"))
	require.NoError(t, err)
	cur, err := b.store.Acquire(ctx, stream, uuid.NewString(), holder("w1"))
	require.NoError(t, err)
	require.Greater(t, cur.Token, old.Token)
	require.ErrorIs(t, b.store.Renew(ctx, old), ownership.ErrLost)
	require.NoError(t, b.store.Renew(ctx, cur))
}

func TestConcurrentAcquireHasOneWinner(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{})
	ctx := t.Context()
	stream := uuid.NewString()
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []ownership.Lease
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			l, err := b.store.Acquire(ctx, stream, "s", holder(fmt.Sprintf("w%d", i)))
			if err == nil {
				mu.Lock()
				winners = append(winners, l)
				mu.Unlock()
				return
			}
			if !errors.Is(err, ownership.ErrHeld) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, winners, 1)
	o, ok, err := b.store.Lookup(ctx, stream)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, winners[0].WorkerID, o.WorkerID)
}

func TestHoldRenewsAndStopsWhenLost(t *testing.T) {
	t.Parallel()
	// The lease is long against its renewals, so a loaded machine that delays
	// a renewal by a second still keeps it.
	b := setup(t, ownership.Config{TTL: 1500 * time.Millisecond, RenewInterval: 100 * time.Millisecond})
	ctx := t.Context()
	stream := uuid.NewString()

	h, err := b.store.Hold(ctx, stream, uuid.NewString(), holder("A"))
	require.NoError(t, err)
	time.Sleep(4500 * time.Millisecond) // three TTLs: only renewal keeps it
	require.NoError(t, h.Err())
	require.NoError(t, b.store.CheckToken(ctx, h.Lease()))

	// Simulate the lease vanishing (as if it expired) and B taking over.
	require.NoError(t, b.rdb.Del(ctx, b.store.OwnerKey(stream)).Err())
	bl, err := b.store.Acquire(ctx, stream, uuid.NewString(), holder("B"))
	require.NoError(t, err)

	select {
	case <-h.Context().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("A's hold context was not cancelled after losing the lease")
	}
	require.ErrorIs(t, h.Err(), ownership.ErrLost)
	require.NoError(t, h.Release(ctx), "releasing a lost hold is not an error")
	require.NoError(t, b.store.CheckToken(ctx, bl), "A's release must not touch B's lease")
}

func TestHoldStopsBeforeExpiryWhenRedisIsUnreachable(t *testing.T) {
	t.Parallel()
	// The hold gives up one renew interval (1.5 s) before its lease could
	// expire: that margin is what lets the check below see the lease still
	// live on a loaded machine.
	b := setup(t, ownership.Config{TTL: 4 * time.Second, RenewInterval: 1500 * time.Millisecond})
	opt, err := redis.ParseURL(testkit.RedisURL())
	require.NoError(t, err)
	own := redis.NewClient(opt)
	store := ownership.New(own, b.store.Config())
	stream := uuid.NewString()

	h, err := store.Hold(t.Context(), stream, uuid.NewString(), holder("A"))
	require.NoError(t, err)
	require.NoError(t, own.Close()) // every renewal now fails without an answer

	select {
	case <-h.Context().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("hold did not give up while renewals failed")
	}
	require.ErrorIs(t, h.Err(), ownership.ErrLost)
	// It gave up while the lease could still be live in Redis: nobody else
	// could have been granted the stream yet.
	_, ok, err := b.store.Lookup(t.Context(), stream)
	require.NoError(t, err)
	require.True(t, ok, "the hold must stop before its lease expires")
}

func TestHoldRelease(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{})
	ctx := t.Context()
	stream := uuid.NewString()
	h, err := b.store.Hold(ctx, stream, uuid.NewString(), holder("A"))
	require.NoError(t, err)
	require.NoError(t, h.Release(ctx))
	require.NoError(t, h.Release(ctx))
	require.ErrorIs(t, h.Err(), ownership.ErrReleased)
	_, ok, err := b.store.Lookup(ctx, stream)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestAssignmentsAndUnowned(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{})
	ctx := t.Context()
	s1, s2 := uuid.NewString(), uuid.NewString()
	sess1, sess2 := uuid.NewString(), uuid.NewString()

	st, err := b.store.State(ctx, s1)
	require.NoError(t, err)
	require.Nil(t, st.Owner)
	require.Nil(t, st.Assignment)

	require.NoError(t, b.store.Assign(ctx, s1, sess1, "signed"))
	require.NoError(t, b.store.Assign(ctx, s2, sess2, "public"))
	un, err := b.store.Unowned(ctx)
	require.NoError(t, err)
	require.Len(t, un, 2)

	l, err := b.store.Acquire(ctx, s1, sess1, holder("w1"))
	require.NoError(t, err)
	un, err = b.store.Unowned(ctx)
	require.NoError(t, err)
	require.Len(t, un, 1)
	require.Equal(t, s2, un[0].StreamID)
	require.Equal(t, sess2, un[0].SessionID)

	st, err = b.store.State(ctx, s1)
	require.NoError(t, err)
	require.NotNil(t, st.Owner)
	require.NotNil(t, st.Assignment)
	require.Equal(t, "signed", st.Policy)
	require.True(t, st.Signed())
	require.Equal(t, l.Token, st.Owner.Token)

	removed, err := b.store.Unassign(ctx, s2, uuid.NewString())
	require.NoError(t, err)
	require.False(t, removed, "another session's assignment is kept")
	removed, err = b.store.Unassign(ctx, s2, sess2)
	require.NoError(t, err)
	require.True(t, removed)
	un, err = b.store.Unowned(ctx)
	require.NoError(t, err)
	require.Empty(t, un)
}

func TestWatchDeliversEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	events := make(chan ownership.Event, 16)
	resets := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() {
		done <- b.store.Watch(ctx, func(ev ownership.Event) { events <- ev }, func() { resets <- struct{}{} })
	}()
	select {
	case <-resets: // subscribed
	case <-ctx.Done():
		t.Fatal("no subscription")
	}
	stream := uuid.NewString()
	require.NoError(t, b.store.Assign(ctx, stream, "sess", "public"))
	l, err := b.store.Acquire(ctx, stream, "sess", holder("w1"))
	require.NoError(t, err)
	require.NoError(t, b.store.Release(ctx, l))
	_, err = b.store.Unassign(ctx, stream, "")
	require.NoError(t, err)

	var got []ownership.Event
	for len(got) < 4 {
		select {
		case ev := <-events:
			got = append(got, ev)
		case <-ctx.Done():
			t.Fatalf("got only %d events: %+v", len(got), got)
		}
	}
	require.Equal(t, ownership.EventAssigned, got[0].Event)
	require.Equal(t, ownership.Event{Event: ownership.EventAcquired, StreamID: stream, SessionID: "sess",
		WorkerID: "w1", OriginURL: "http://w1:8090", Token: l.Token}, got[1])
	require.Equal(t, ownership.EventReleased, got[2].Event)
	require.Equal(t, l.Token, got[2].Token)
	require.Equal(t, "w1", got[2].WorkerID)
	require.Equal(t, ownership.EventEnded, got[3].Event)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// The policy key is the control plane's live view of a stream's playback
// policy: written with the assignment, changed in place by SetPolicy (with an
// event), kept a while after the session ended, never created for a stream
// that is not live.
func TestPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t, ownership.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, session := uuid.NewString(), uuid.NewString()

	st, err := b.store.State(ctx, stream)
	require.NoError(t, err)
	require.Empty(t, st.Policy)
	require.True(t, st.Signed(), "no policy in Redis: treated as signed")
	updated, err := b.store.SetPolicy(ctx, stream, ownership.PolicyPublic)
	require.NoError(t, err)
	require.False(t, updated, "a stream that is not live gets no policy key")
	p, err := b.store.Policy(ctx, stream)
	require.NoError(t, err)
	require.Empty(t, p)

	require.NoError(t, b.store.Assign(ctx, stream, session, ownership.PolicyPublic))
	st, err = b.store.State(ctx, stream)
	require.NoError(t, err)
	require.Equal(t, ownership.PolicyPublic, st.Policy)
	require.False(t, st.Signed())
	ttl, err := b.rdb.PTTL(ctx, b.store.PolicyKey(stream)).Result()
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), ttl, "no expiry while the stream wants a worker")

	events := make(chan ownership.Event, 16)
	resets := make(chan struct{}, 16)
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.store.Watch(wctx, func(ev ownership.Event) { events <- ev }, func() { resets <- struct{}{} })
	}()
	select {
	case <-resets:
	case <-ctx.Done():
		t.Fatal("no subscription")
	}
	updated, err = b.store.SetPolicy(ctx, stream, ownership.PolicySigned)
	require.NoError(t, err)
	require.True(t, updated)
	select {
	case ev := <-events:
		require.Equal(t, ownership.Event{Event: ownership.EventPolicy, StreamID: stream, Policy: ownership.PolicySigned}, ev)
	case <-ctx.Done():
		t.Fatal("no policy event")
	}
	p, err = b.store.Policy(ctx, stream)
	require.NoError(t, err)
	require.Equal(t, ownership.PolicySigned, p)

	removed, err := b.store.Unassign(ctx, stream, session)
	require.NoError(t, err)
	require.True(t, removed)
	ttl, err = b.rdb.PTTL(ctx, b.store.PolicyKey(stream)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Minute, "kept for the final playlists")
	require.LessOrEqual(t, ttl, ownership.PolicyLinger)
	updated, err = b.store.SetPolicy(ctx, stream, ownership.PolicyPublic)
	require.NoError(t, err)
	require.True(t, updated, "a just-ended stream's policy is still applied")
	ttl, err = b.rdb.PTTL(ctx, b.store.PolicyKey(stream)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Minute, "SetPolicy keeps the expiry")

	require.NoError(t, b.rdb.Del(ctx, b.store.PolicyKey(stream)).Err())
	require.NoError(t, b.store.RestorePolicy(ctx, stream, ownership.PolicySigned))
	p, err = b.store.Policy(ctx, stream)
	require.NoError(t, err)
	require.Equal(t, ownership.PolicySigned, p, "restored although Redis had lost it")

	require.NoError(t, b.store.Assign(ctx, stream, uuid.NewString(), ownership.PolicySigned))
	ttl, err = b.rdb.PTTL(ctx, b.store.PolicyKey(stream)).Result()
	require.NoError(t, err)
	require.Equal(t, time.Duration(-1), ttl, "a new session makes the policy permanent again")
	wcancel()
	require.ErrorIs(t, <-done, context.Canceled)
}
