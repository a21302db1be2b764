// Package migrate applies the embedded schema migrations (module
// github.com/dionysia/dionysia/migrations) with goose, holding a PostgreSQL
// advisory lock so that concurrent runs (several replicas starting at once, or
// two operators) apply each migration exactly once.
package migrate

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/dionysia/dionysia/migrations"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// DefaultLockID is the advisory lock key taken while migrating.
const DefaultLockID int64 = 0x64696f6e79736961 // "dionysia"

// Config configures a Migrator. The zero value is usable.
type Config struct {
	// LockID is the PostgreSQL advisory lock key. Default DefaultLockID. Tests that
	// migrate separate schemas in parallel give each its own.
	LockID int64
	// LockTimeout bounds the wait for the lock held by another migrator. Default 5 min.
	LockTimeout time.Duration
	// Logger receives one line per applied migration. Default: discard.
	Logger *slog.Logger
}

// Migrator runs the migrations against one database.
type Migrator struct {
	p *goose.Provider
}

// Result is the outcome of applying one migration.
type Result struct {
	Version   int64
	Name      string
	Direction string // "up" or "down"
	Duration  time.Duration
}

// Status is one migration's state in the database.
type Status struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// New returns a Migrator for db. The tables are created in the first schema of
// the connection's search_path. Close does not close db.
func New(db *sql.DB, cfg Config) (*Migrator, error) {
	timeout := cmp.Or(cfg.LockTimeout, 5*time.Minute)
	const period = 1 // seconds between lock attempts
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(cmp.Or(cfg.LockID, DefaultLockID)),
		lock.WithLockTimeout(period, uint64(max(timeout/time.Second, 1))),
	)
	if err != nil {
		return nil, fmt.Errorf("creating migration lock: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true)}
	if cfg.Logger != nil {
		opts = append(opts, goose.WithSlog(cfg.Logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	return &Migrator{p: p}, nil
}

func result(r *goose.MigrationResult) Result {
	return Result{Version: r.Source.Version, Name: baseName(r.Source.Path), Direction: r.Direction, Duration: r.Duration}
}

func baseName(p string) string { return path.Base(p) }

// Up applies every pending migration and returns what it applied (none when
// the schema is current).
func (m *Migrator) Up(ctx context.Context) ([]Result, error) {
	rs, err := m.p.Up(ctx)
	out := make([]Result, 0, len(rs))
	for _, r := range rs {
		if r.Error == nil {
			out = append(out, result(r))
		}
	}
	if err != nil {
		return out, fmt.Errorf("migrating up: %w", err)
	}
	return out, nil
}

// ErrNothingToRollBack is returned by Down when no migration is applied.
var ErrNothingToRollBack = errors.New("no migration is applied")

// Down rolls the most recent migration back.
func (m *Migrator) Down(ctx context.Context) (Result, error) {
	r, err := m.p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		return Result{}, ErrNothingToRollBack
	}
	if err != nil {
		return Result{}, fmt.Errorf("migrating down: %w", err)
	}
	return result(r), nil
}

// Status lists every known migration, oldest first.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	ss, err := m.p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading migration status: %w", err)
	}
	out := make([]Status, len(ss))
	for i, s := range ss {
		out[i] = Status{Version: s.Source.Version, Name: baseName(s.Source.Path),
			Applied: s.State == goose.StateApplied, AppliedAt: s.AppliedAt}
	}
	return out, nil
}

// Version returns the version of the most recent applied migration (0 for none)
// and the newest version known to this binary.
func (m *Migrator) Version(ctx context.Context) (current, latest int64, err error) {
	current, latest, err = m.p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading schema version: %w", err)
	}
	return current, latest, nil
}
