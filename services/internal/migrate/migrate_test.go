package migrate_test

import (
	"context"
	"github.com/dionysia/dionysia/pkg/testkit/postgres"
	"sync"
	"testing"
	"time"

	"github.com/dionysia/dionysia/services/internal/dbtest"
	"github.com/dionysia/dionysia/services/internal/migrate"
	"github.com/stretchr/testify/require"
)

func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := postgres.NewSchema(t)
	pool := s.Pool(t)
	m := dbtest.Migrator(t, s, pool)

	countTables := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx,
			`SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name <> 'goose_db_version'`, s.Name).Scan(&n))
		return n
	}

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	for _, x := range st {
		require.False(t, x.Applied, x.Name)
	}

	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, applied, len(st))
	require.Equal(t, 13, countTables())
	cur, latest, err := m.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, latest, cur)

	again, err := m.Up(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "up on a current schema applies nothing")

	// Down one step at a time, to nothing.
	for i := len(st) - 1; i >= 0; i-- {
		r, err := m.Down(ctx)
		require.NoError(t, err)
		require.Equal(t, st[i].Version, r.Version)
	}
	require.Equal(t, 0, countTables())
	_, err = m.Down(ctx)
	require.ErrorIs(t, err, migrate.ErrNothingToRollBack)

	applied, err = m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, applied, len(st))
	require.Equal(t, 13, countTables())
	var builtins int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM profiles WHERE builtin`).Scan(&builtins))
	require.Equal(t, 3, builtins)
	st, err = m.Status(ctx)
	require.NoError(t, err)
	for _, x := range st {
		require.True(t, x.Applied, x.Name)
		require.False(t, x.AppliedAt.IsZero())
	}
}

func TestConcurrentUpAppliesOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := postgres.NewSchema(t)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		errs  []error
	)
	for range 3 {
		pool := s.Pool(t)
		m := dbtest.Migrator(t, s, pool) // same schema → same lock key
		wg.Go(func() {
			rs, err := m.Up(ctx)
			mu.Lock()
			defer mu.Unlock()
			total += len(rs)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	require.Empty(t, errs)
	pool := s.Pool(t)
	st, err := dbtest.Migrator(t, s, pool).Status(ctx)
	require.NoError(t, err)
	require.Equal(t, len(st), total, "each migration applied by exactly one migrator")
}
