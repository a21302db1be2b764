package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/services/internal/edgeapi"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/stretchr/testify/require"
)

// countEvents counts the events of a type in the log.
func countEvents(t *testing.T, b testBundle, typ string) int {
	t.Helper()
	events, _, err := b.st.ListEvents(b.ctx, store.EventFilter{TypePrefix: typ}, store.Page{Limit: 200})
	require.NoError(t, err)
	return len(events)
}

func TestRecordSessionEndOnceAcrossReclaims(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.st.GetProfileByName(b.ctx, ladder.Builtin720p)
	require.NoError(t, err)
	s, err := b.st.CreateStream(b.ctx, store.NewStream{Name: "ends", ProfileID: p.ID})
	require.NoError(t, err)
	opened, err := b.st.OpenSession(b.ctx, store.NewSession{StreamID: s.ID, EdgeID: "edge-1", SourceID: "conn-1"})
	require.NoError(t, err)
	id := opened.Session.ID

	// An open session has no end to record.
	_, ok, err := b.st.RecordSessionEnd(b.ctx, id)
	require.NoError(t, err)
	require.False(t, ok)

	_, ended, err := b.st.EndSession(b.ctx, id, edgeapi.EndPublisherDisconnected, "", 0)
	require.NoError(t, err)
	require.True(t, ended)

	// What the ingest service does on each claim: the claim and the event in
	// one transaction, the event only if this claim recorded the end.
	claimAndRecord := func() bool {
		t.Helper()
		recorded := false
		err := b.st.InTx(b.ctx, func(tx *store.Store) error {
			sess, ok, err := tx.ClaimWorkerStop(b.ctx, id)
			if err != nil || !ok {
				return err
			}
			got, ok, err := tx.RecordSessionEnd(b.ctx, sess.ID)
			if err != nil || !ok {
				return err
			}
			require.NotNil(t, got.EndRecordedAt)
			recorded = true
			_, err = tx.AppendEvent(b.ctx, store.NewEvent{Type: "session.ended", StreamID: &s.ID, Data: struct{}{}})
			return err
		})
		require.NoError(t, err)
		return recorded
	}

	// A claim that rolls back records nothing, and leaves the stop due.
	boom := errors.New("boom")
	err = b.st.InTx(b.ctx, func(tx *store.Store) error {
		if _, ok, err := tx.ClaimWorkerStop(b.ctx, id); err != nil || !ok {
			return errors.Join(err, errors.New("not claimed"))
		}
		if _, ok, err := tx.RecordSessionEnd(b.ctx, id); err != nil || !ok {
			return errors.Join(err, errors.New("not recorded"))
		}
		if _, err := tx.AppendEvent(b.ctx, store.NewEvent{Type: "session.ended", StreamID: &s.ID, Data: struct{}{}}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Zero(t, countEvents(t, b, "session.ended"))

	require.True(t, claimAndRecord())
	// The claim is given back (telling the worker failed) and claimed again,
	// here and by "another replica": the end is not recorded again.
	require.NoError(t, b.st.UnclaimWorkerStop(b.ctx, id))
	var wg sync.WaitGroup
	results := make([]bool, 4)
	for i := range results {
		wg.Go(func() {
			results[i] = claimAndRecord()
		})
	}
	wg.Wait()
	require.Equal(t, []bool{false, false, false, false}, results)
	require.Equal(t, 1, countEvents(t, b, "session.ended"))

	// A session whose end was recorded is over: its publisher cannot resume
	// it even though the claim was given back.
	require.NoError(t, b.st.UnclaimWorkerStop(b.ctx, id))
	again, err := b.st.OpenSession(b.ctx, store.NewSession{StreamID: s.ID, EdgeID: "edge-1", SourceID: "conn-2", ResumeWithin: time.Hour})
	require.NoError(t, err)
	require.False(t, again.Resumed)
	require.True(t, again.Created)
	require.NotEqual(t, id, again.Session.ID)
}

func TestMarkWorkersOncePerTransition(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := func(ws []store.WorkerSeen) []string {
		out := []string{}
		for _, w := range ws {
			out = append(out, w.ID)
		}
		return out
	}
	up, err := b.st.MarkWorkersUp(b.ctx, []string{"w1", "w2"})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"w1", "w2"}, ids(up))
	up, err = b.st.MarkWorkersUp(b.ctx, []string{"w1", "w2"})
	require.NoError(t, err)
	require.Empty(t, up, "already up")

	// Two replicas see w2 gone at once: one of them gets the transition.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lost []string
	)
	for range 3 {
		wg.Go(func() {
			l, err := b.st.MarkWorkersLost(b.ctx, []string{"w1"})
			require.NoError(t, err)
			mu.Lock()
			lost = append(lost, ids(l)...)
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, []string{"w2"}, lost)

	// A lost worker that comes back is up again, once.
	up, err = b.st.MarkWorkersUp(b.ctx, []string{"w1", "w2"})
	require.NoError(t, err)
	require.Equal(t, []string{"w2"}, ids(up))
	require.Nil(t, up[0].LostAt)

	// Rolled back: the transition did not happen and is seen again.
	err = b.st.InTx(b.ctx, func(tx *store.Store) error {
		l, err := tx.MarkWorkersLost(b.ctx, nil)
		require.NoError(t, err)
		require.Len(t, l, 2)
		return errors.New("boom")
	})
	require.Error(t, err)
	l, err := b.st.MarkWorkersLost(b.ctx, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"w1", "w2"}, ids(l))
}
