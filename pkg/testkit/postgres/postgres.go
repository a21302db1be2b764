// Package postgres gives tests a PostgreSQL schema of their own, dropped when
// the test ends, so that tests run in parallel against the real server; and
// the harness a whole database per platform.
//
// TEST_DATABASE_URL (default DefaultDatabaseURL) selects the test database;
// the harness's admin URL is a role allowed to create databases, connected
// to the "postgres" database.
package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dionysia/dionysia/pkg/testkit"
)

// Default server addresses.
const (
	DefaultDatabaseURL      = "postgres://dionysia:dionysia@127.0.0.1:5432/dionysia_test?sslmode=disable"
	DefaultAdminDatabaseURL = "postgres://dionysia:dionysia@127.0.0.1:5432/postgres?sslmode=disable"
)

const install = "deploy/local/setup.sh services (Debian's postgresql, role and databases dionysia/dionysia_test)"

// DatabaseURL returns TEST_DATABASE_URL or DefaultDatabaseURL.
func DatabaseURL() string { return cmp.Or(os.Getenv("TEST_DATABASE_URL"), DefaultDatabaseURL) }

// Schema is a fresh, empty schema in the test database.
type Schema struct {
	Name string
	// URL is DatabaseURL with the schema as search_path, for child
	// processes and code that opens its own connections.
	URL string
	// Config is a pool configuration whose connections use the schema.
	Config *pgxpool.Config
}

// NewSchema creates an empty schema that is dropped (with everything in it)
// when the test ends. An unreachable server fails (CI) or skips the test.
func NewSchema(t testing.TB) *Schema {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "t_" + randomHex(6)
	admin, err := pgx.Connect(ctx, DatabaseURL())
	testkit.Require(t, err, "PostgreSQL test database (TEST_DATABASE_URL)", install)
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("creating schema %s: %v", name, err)
	}
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
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = name
	cfg.MaxConns = 4
	u, err := withParam(DatabaseURL(), "search_path", name)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	return &Schema{Name: name, URL: u, Config: cfg}
}

// Pool opens a pool on the schema, closed when the test ends.
func (s *Schema) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), s.Config.Copy())
	if err != nil {
		t.Fatalf("opening a pool on schema %s: %v", s.Name, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Database is a database created for one platform (harness).
type Database struct {
	Name string
	URL  string
	// adminURL is the URL it was created with, to drop it.
	adminURL string
}

// CreateDatabase creates an empty database named prefix_<random> through
// adminURL (a role allowed to create databases, on the "postgres" database).
func CreateDatabase(ctx context.Context, adminURL, prefix string) (*Database, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL (%s): %w", install, err)
	}
	defer conn.Close(context.Background())
	d := &Database{Name: prefix + "_" + randomHex(4), adminURL: adminURL}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+d.Name); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", d.Name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parsing the admin database URL: %w", err)
	}
	u.Path = "/" + d.Name
	d.URL = u.String()
	return d, nil
}

// Drop drops the database, ending its sessions.
func (d *Database) Drop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		return fmt.Errorf("dropping database %s: %w", d.Name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", d.Name, err)
	}
	return nil
}

func withParam(raw, key, value string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
