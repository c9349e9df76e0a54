package testdb

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var tmpl *Template

func TestMain(m *testing.M) { Exit(Run(m, &tmpl)) }

// counts returns the rows of the seeded and of an unseeded table.
func counts(t *testing.T, url string) (orgs, factories int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM organizations), (SELECT count(*) FROM factories)`).Scan(&orgs, &factories))
	return orgs, factories
}

// A copy a test wrote to comes back to the next test with the template's
// rows only: the migration's seeded organization, nothing the test added.
func TestReusedCopyIsReset(t *testing.T) {
	var first string
	t.Run("writes", func(t *testing.T) {
		// Closed after the copy is released (cleanups run last-in,
		// first-out), so the reset has a session to end.
		var conn *pgx.Conn
		t.Cleanup(func() {
			if conn != nil {
				_ = conn.Close(context.Background())
			}
		})
		first = tmpl.New(t)
		seedOrgs, _ := counts(t, first)
		require.Equal(t, 1, seedOrgs, "migration 001 seeds one organization")
		ctx := context.Background()
		var err error
		conn, err = pgx.Connect(ctx, first)
		require.NoError(t, err)
		_, err = conn.Exec(ctx, `WITH o AS (INSERT INTO organizations (name) VALUES ('Acme') RETURNING id)
			INSERT INTO factories (organization_id, name) SELECT id, 'Plant' FROM o`)
		require.NoError(t, err)
		orgs, factories := counts(t, first)
		require.Equal(t, [2]int{2, 1}, [2]int{orgs, factories})
	})
	t.Run("reads", func(t *testing.T) {
		again := tmpl.New(t)
		assert.Equal(t, first, again, "the free copy is reused")
		orgs, factories := counts(t, again)
		assert.Equal(t, [2]int{1, 0}, [2]int{orgs, factories})
	})
}
