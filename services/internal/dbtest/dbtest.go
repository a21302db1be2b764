// Package dbtest applies this module's migrations to a test's own
// PostgreSQL schema (testkit/postgres): the one part of the test kit that
// needs the services module.
package dbtest

import (
	"context"
	"hash/fnv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit/postgres"
	"github.com/dionysia/dionysia/services/internal/migrate"
)

// Migrator returns a migrator for the schema with its own advisory lock key,
// so that parallel tests do not wait for each other.
func Migrator(t testing.TB, s *postgres.Schema, pool *pgxpool.Pool) *migrate.Migrator {
	t.Helper()
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	h := fnv.New64a()
	_, _ = h.Write([]byte(s.Name))
	m, err := migrate.New(db, migrate.Config{LockID: int64(h.Sum64() >> 1)})
	require.NoError(t, err)
	return m
}

// Migrated returns a fresh schema with every migration applied, and a pool on it.
func Migrated(t testing.TB) (*postgres.Schema, *pgxpool.Pool) {
	t.Helper()
	s := postgres.NewSchema(t)
	pool := s.Pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Migrator(t, s, pool).Up(ctx)
	require.NoError(t, err)
	return s, pool
}

// New returns a pool on a fresh, migrated schema.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	_, pool := Migrated(t)
	return pool
}
