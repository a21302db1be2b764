// Package dbtest gives tests an isolated, migrated PostgreSQL schema and a Redis
// database, so that tests can run in parallel against the real servers.
//
// TEST_DATABASE_URL (default postgres://dionysia:dionysia@127.0.0.1:5432/dionysia_test?sslmode=disable)
// and TEST_REDIS_URL (default redis://127.0.0.1:6379/1) select the servers.
package dbtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"os"
	"testing"
	"time"

	"github.com/dionysia/dionysia/services/internal/migrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Default server addresses.
const (
	DefaultDatabaseURL = "postgres://dionysia:dionysia@127.0.0.1:5432/dionysia_test?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/1"
)

// DatabaseURL returns TEST_DATABASE_URL or its default.
func DatabaseURL() string { return cmp.Or(os.Getenv("TEST_DATABASE_URL"), DefaultDatabaseURL) }

// Schema is a fresh schema in the test database.
type Schema struct {
	Name string
	// Config is a pool configuration whose connections use the schema.
	Config *pgxpool.Config
}

// NewSchema creates an empty schema that is dropped when the test ends.
func NewSchema(t testing.TB) *Schema {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])

	admin, err := pgx.Connect(ctx, DatabaseURL())
	require.NoError(t, err, "connecting to the test database (TEST_DATABASE_URL)")
	defer admin.Close(context.Background())
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, DatabaseURL())
		if err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})

	cfg, err := pgxpool.ParseConfig(DatabaseURL())
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = name
	cfg.MaxConns = 4
	return &Schema{Name: name, Config: cfg}
}

// Pool opens a pool on the schema, closed when the test ends.
func (s *Schema) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), s.Config.Copy())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// Migrator returns a migrator for the schema with its own advisory lock key, so
// that parallel tests do not wait for each other.
func (s *Schema) Migrator(t testing.TB, pool *pgxpool.Pool) *migrate.Migrator {
	t.Helper()
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	h := fnv.New64a()
	_, _ = h.Write([]byte(s.Name))
	m, err := migrate.New(db, migrate.Config{LockID: int64(h.Sum64() >> 1)})
	require.NoError(t, err)
	return m
}

// New returns a pool on a fresh schema with every migration applied.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	s := NewSchema(t)
	pool := s.Pool(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.Migrator(t, pool).Up(ctx)
	require.NoError(t, err)
	return pool
}

// Redis returns a client on TEST_REDIS_URL (default database 1), closed when
// the test ends. Tests must use keys unique to themselves.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(cmp.Or(os.Getenv("TEST_REDIS_URL"), DefaultRedisURL))
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
