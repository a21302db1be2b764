package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dionysia/dionysia/pkg/ladder"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestAppendEventCommitsWithItsChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.st.GetProfileByName(b.ctx, ladder.Builtin720p)
	require.NoError(t, err)

	var created store.Stream
	err = b.st.InTx(b.ctx, func(tx *store.Store) error {
		created, err = tx.CreateStream(b.ctx, store.NewStream{Name: "kept", ProfileID: p.ID})
		if err != nil {
			return err
		}
		_, err = tx.AppendEvent(b.ctx, store.NewEvent{Type: "stream.created", StreamID: &created.ID, Data: map[string]string{"name": created.Name}})
		return err
	})
	require.NoError(t, err)

	// A change that rolls back leaves no event, and its event no change.
	boom := errors.New("boom")
	var dropped store.Stream
	err = b.st.InTx(b.ctx, func(tx *store.Store) error {
		if dropped, err = tx.CreateStream(b.ctx, store.NewStream{Name: "dropped", ProfileID: p.ID}); err != nil {
			return err
		}
		if _, err := tx.AppendEvent(b.ctx, store.NewEvent{Type: "stream.created", StreamID: &dropped.ID, Data: struct{}{}}); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	_, err = b.st.GetStream(b.ctx, dropped.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	events, next, err := b.st.ListEvents(b.ctx, store.EventFilter{TypePrefix: "stream."}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Nil(t, next)
	require.Len(t, events, 1)
	require.Equal(t, created.ID, *events[0].StreamID)
	require.JSONEq(t, `{"name":"kept"}`, string(events[0].Data))
	require.Equal(t, byte(7), events[0].ID[6]>>4, "UUIDv7")

	got, err := b.st.GetEvent(b.ctx, events[0].ID)
	require.NoError(t, err)
	require.Equal(t, events[0], got)
	_, err = b.st.GetEvent(b.ctx, uuid.Must(uuid.NewV7()))
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestListEventsFiltersAndPaginates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, c := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	for _, e := range []store.NewEvent{
		{Type: "stream.live", StreamID: &a}, {Type: "session.started", StreamID: &a},
		{Type: "session.ended", StreamID: &c}, {Type: "worker.up"}, {Type: "stream_x.live"},
	} {
		e.Data = struct{}{}
		_, err := b.st.AppendEvent(b.ctx, e)
		require.NoError(t, err)
	}
	types := func(f store.EventFilter, page store.Page) ([]string, *uuid.UUID) {
		t.Helper()
		events, next, err := b.st.ListEvents(b.ctx, f, page)
		require.NoError(t, err)
		var out []string
		for _, e := range events {
			out = append(out, e.Type)
		}
		return out, next
	}
	got, _ := types(store.EventFilter{TypePrefix: "session."}, store.Page{Limit: 10})
	require.Equal(t, []string{"session.ended", "session.started"}, got, "newest first")
	got, _ = types(store.EventFilter{StreamID: &a}, store.Page{Limit: 10})
	require.Equal(t, []string{"session.started", "stream.live"}, got)
	// "_" in a prefix is a literal character, not LIKE's wildcard.
	got, _ = types(store.EventFilter{TypePrefix: "stream_"}, store.Page{Limit: 10})
	require.Equal(t, []string{"stream_x.live"}, got)

	first, next := types(store.EventFilter{}, store.Page{Limit: 3})
	require.Equal(t, []string{"stream_x.live", "worker.up", "session.ended"}, first)
	require.NotNil(t, next)
	rest, next := types(store.EventFilter{}, store.Page{After: next, Limit: 3})
	require.Equal(t, []string{"session.started", "stream.live"}, rest)
	require.Nil(t, next)

	// A follower sees the events once the transactions that began before
	// them ended (other tests' too): wait for it.
	var all []store.Event
	require.Eventually(t, func() bool {
		var err error
		all, err = b.st.EventsAfter(b.ctx, store.EventFilter{}, 0, 10)
		return err == nil && len(all) == 5
	}, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, "stream.live", all[0].Type, "oldest first")
	tail, err := b.st.EventsAfter(b.ctx, store.EventFilter{}, all[3].Seq, 10)
	require.NoError(t, err)
	require.Len(t, tail, 1)
	require.Equal(t, "stream_x.live", tail[0].Type)
}

// A follower never skips an event whose transaction commits after a later
// event's: that later event waits until the earlier transaction ended.
func TestEventsAfterWaitsForEarlierTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inserted, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.st.InTx(context.Background(), func(tx *store.Store) error {
			if _, err := tx.AppendEvent(b.ctx, store.NewEvent{Type: "session.started", Data: struct{}{}}); err != nil {
				return err
			}
			close(inserted)
			<-release
			return nil
		})
	}()
	<-inserted
	later, err := b.st.AppendEvent(b.ctx, store.NewEvent{Type: "stream.live", Data: struct{}{}})
	require.NoError(t, err)
	got, err := b.st.EventsAfter(b.ctx, store.EventFilter{}, 0, 10)
	require.NoError(t, err)
	require.Empty(t, got, "stream.live is committed, but the earlier session.started's transaction is open")

	close(release)
	require.NoError(t, <-done)
	require.Eventually(t, func() bool {
		got, err = b.st.EventsAfter(b.ctx, store.EventFilter{}, 0, 10)
		return err == nil && len(got) == 2
	}, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, "session.started", got[0].Type)
	require.Equal(t, later.ID, got[1].ID)
}
