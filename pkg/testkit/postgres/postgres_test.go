package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dionysia/dionysia/pkg/testkit"
	"github.com/dionysia/dionysia/pkg/testkit/postgres"
)

func TestSchemaIsTheTestsOwnAndDroppedAtCleanup(t *testing.T) {
	var name string
	t.Run("a test", func(t *testing.T) {
		s := postgres.NewSchema(t)
		name = s.Name
		pool := s.Pool(t)
		_, err := pool.Exec(t.Context(), "CREATE TABLE x (id int)")
		require.NoError(t, err)
		// The URL form reaches the same schema.
		conn, err := pgx.Connect(t.Context(), s.URL)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		var schema string
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT table_schema FROM information_schema.tables WHERE table_name = 'x' AND table_schema = current_schema()").Scan(&schema))
		require.Equal(t, s.Name, schema)
	})
	conn, err := pgx.Connect(t.Context(), postgres.DatabaseURL())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", name).Scan(&n))
	require.Zero(t, n, "schema %s dropped", name)
}

func TestCreateDatabase(t *testing.T) {
	d, err := postgres.CreateDatabase(t.Context(), postgres.DefaultAdminDatabaseURL, "testkit")
	testkit.Require(t, err, "a PostgreSQL role allowed to create databases", "deploy/local/setup.sh services")
	conn, err := pgx.Connect(t.Context(), d.URL)
	require.NoError(t, err)
	var db string
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&db))
	require.Equal(t, d.Name, db)
	require.NoError(t, conn.Close(context.Background()))
	require.NoError(t, d.Drop(context.Background()))
}
