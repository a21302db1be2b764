// Package store is Dionysia's PostgreSQL persistence: streams, profiles, API
// keys and stream sessions. It exposes domain types; the sqlc-generated code in
// internal/dbq stays behind it, and database errors are translated into this
// package's sentinels in exactly one place (interpretError).
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/dionysia/dionysia/services/internal/store/internal/dbq"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sentinel errors. Every error the store returns for one of these conditions
// matches the sentinel with errors.Is.
var (
	// ErrNotFound: the row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value (a profile's name, a stream key) is taken.
	ErrConflict = errors.New("conflict")
	// ErrInUse: the row is still referenced (a profile used by a stream).
	ErrInUse = errors.New("in use")
	// ErrBuiltin: the profile is built in and cannot be modified or deleted.
	ErrBuiltin = errors.New("built-in profile")
	// ErrInvalid: a value broke a database constraint the caller should have checked.
	ErrInvalid = errors.New("invalid value")
)

// ConstraintError is the error for a violated database constraint. It matches
// its Kind (ErrConflict, ErrInUse or ErrInvalid) with errors.Is.
type ConstraintError struct {
	Kind       error
	Constraint string // e.g. "profiles_name_key"
}

func (e *ConstraintError) Error() string {
	return fmt.Sprintf("%v: constraint %s", e.Kind, e.Constraint)
}

// Unwrap returns Kind.
func (e *ConstraintError) Unwrap() error { return e.Kind }

// interpretError translates pgx errors into the store's sentinels. It is the
// only place that knows about PostgreSQL error codes.
func interpretError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return &ConstraintError{Kind: ErrConflict, Constraint: pgErr.ConstraintName}
		case "23503": // foreign_key_violation
			return &ConstraintError{Kind: ErrInUse, Constraint: pgErr.ConstraintName}
		case "23514", "22001", "22P02": // check_violation, string too long, invalid text representation
			return &ConstraintError{Kind: ErrInvalid, Constraint: pgErr.ConstraintName}
		}
	}
	return err
}

// Store reads and writes Dionysia's tables.
type Store struct {
	db beginner // the pool, or the transaction of InTx
	q  *dbq.Queries
}

// beginner is what both *pgxpool.Pool and pgx.Tx are: something that runs
// queries and begins a transaction (on a pgx.Tx, a savepoint).
type beginner interface {
	dbq.DBTX
	Begin(ctx context.Context) (pgx.Tx, error)
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{db: pool, q: dbq.New(pool)}
}

// tx runs fn in a transaction, committing when it returns nil. Inside InTx
// it is a savepoint of InTx's transaction.
func (s *Store) tx(ctx context.Context, fn func(q *dbq.Queries) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error { return fn(s.q.WithTx(tx)) })
}

// InTx runs fn with a Store whose every call joins one transaction, and
// commits it when fn returns nil (rolls it back otherwise). It is how a
// change and the event recording it (AppendEvent) are written together: the
// event exists if and only if the change was committed.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		return fn(&Store{db: tx, q: s.q.WithTx(tx)})
	})
}

// Page selects a page of a list ordered by id. After is the last id of the
// previous page (nil for the first page); Limit is the page size (≥ 1).
type Page struct {
	After *uuid.UUID
	Limit int
}

// paginate trims a result of Limit+1 rows to Limit and returns the cursor of
// the next page, or nil when this is the last one.
func paginate[T any](rows []T, limit int, id func(T) uuid.UUID) ([]T, *uuid.UUID) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	next := id(rows[limit-1])
	return rows, &next
}

func (p Page) maxRows() int32 { return int32(max(p.Limit, 1) + 1) }

func newID() uuid.UUID {
	// NewV7 fails only when crypto/rand does, which panics first since Go 1.24.
	return uuid.Must(uuid.NewV7())
}
