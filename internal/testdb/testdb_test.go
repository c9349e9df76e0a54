package testdb

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/store"
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
		// A row in every table, each referencing the one before: the
		// reset must empty them in an order no foreign key refuses.
		_, err = conn.Exec(ctx, `WITH o AS (INSERT INTO organizations (name) VALUES ('Acme') RETURNING id),
			f AS (INSERT INTO factories (organization_id, name) SELECT id, 'Plant' FROM o RETURNING id),
			e AS (INSERT INTO equipment (factory_id, name) SELECT id, 'Pump' FROM f RETURNING id),
			g AS (INSERT INTO gateways (factory_id, gateway_id, name, url, email, password_encrypted)
				SELECT id, 'gw', 'gw', 'ws://x', 'a@b.c', 'x' FROM f RETURNING id),
			s AS (INSERT INTO sensors (gateway_id, equipment_id, serial, name) SELECT g.id, e.id, 1, 's' FROM g, e RETURNING id, gateway_id),
			r AS (INSERT INTO readings (sensor_id, gateway_id, trigger, status) SELECT id, gateway_id, 'MANUAL', 'COMPLETE' FROM s RETURNING id),
			d AS (INSERT INTO reading_samples (reading_id, data) SELECT id, '\x00' FROM r)
			INSERT INTO api_tokens (name, role, token_hash) VALUES ('t', 'admin', '\x01')`)
		require.NoError(t, err)
		// A test of schema checks moves tern's version.
		_, err = conn.Exec(ctx, `UPDATE public.schema_version SET version = version + 100`)
		require.NoError(t, err)
		orgs, factories := counts(t, first)
		require.Equal(t, [2]int{2, 1}, [2]int{orgs, factories})
	})
	t.Run("reads", func(t *testing.T) {
		again := tmpl.New(t)
		assert.Equal(t, first, again, "the free copy is reused")
		orgs, factories := counts(t, again)
		assert.Equal(t, [2]int{1, 0}, [2]int{orgs, factories})
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, again)
		require.NoError(t, err)
		defer conn.Close(ctx)
		var rest int
		require.NoError(t, conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM equipment) + (SELECT count(*) FROM gateways)
			+ (SELECT count(*) FROM sensors) + (SELECT count(*) FROM readings) + (SELECT count(*) FROM reading_samples)
			+ (SELECT count(*) FROM api_tokens)`).Scan(&rest))
		assert.Zero(t, rest, "every table emptied")
		var version, rows int
		require.NoError(t, conn.QueryRow(ctx, `SELECT max(version), count(*) FROM public.schema_version`).Scan(&version, &rows))
		migrations, err := store.MigrationCount()
		require.NoError(t, err)
		assert.Equal(t, [2]int{migrations, 1}, [2]int{version, rows}, "tern's version is the template's")
	})
}

func TestDeleteOrderPutsReferencingTablesFirst(t *testing.T) {
	// gatewayd's shape: readings → sensors → gateways → factories →
	// organizations, sensors → equipment → factories, created in that
	// order of oids except equipment, which came after gateways.
	tables := []table{{OID: 1, Name: "organizations"}, {OID: 2, Name: "factories"}, {OID: 3, Name: "gateways"}, {OID: 4, Name: "equipment"},
		{OID: 5, Name: "sensors"}, {OID: 6, Name: "readings"}, {OID: 9, Name: "elsewhere_referenced"}}
	refs := []reference{{2, 1}, {3, 2}, {4, 2}, {5, 3}, {5, 4}, {6, 5}, {6, 3}, {100, 9}}
	order, ok := deleteOrder(tables, refs)
	require.True(t, ok)
	require.Len(t, order, len(tables))
	pos := map[string]int{}
	for i, name := range order {
		pos[name] = i
	}
	names := map[int64]string{}
	for _, tbl := range tables {
		names[tbl.OID] = tbl.Name
	}
	for _, r := range refs {
		if r.From == 100 {
			continue // a table outside the template does not hold anything up
		}
		assert.Less(t, pos[names[r.From]], pos[names[r.To]], "%s before %s", names[r.From], names[r.To])
	}

	_, ok = deleteOrder([]table{{OID: 1, Name: "a"}, {OID: 2, Name: "b"}}, []reference{{1, 2}, {2, 1}})
	assert.False(t, ok, "a cycle falls back to TRUNCATE")
}

// openAnother opens the template as a second test process would.
func openAnother(t *testing.T) *Template {
	t.Helper()
	other, err := Open(context.Background())
	require.NoError(t, err)
	t.Cleanup(other.close)
	return other
}

// A copy one process holds is never handed to another.
func TestClaimsAreExclusiveAcrossProcesses(t *testing.T) {
	mine := tmpl.New(t)
	other := openAnother(t)
	theirs := other.New(t)
	assert.NotEqual(t, mine, theirs)
	orgs, _ := counts(t, theirs)
	assert.Equal(t, 1, orgs)
}

// A copy a process left behind without releasing it (it died mid-test)
// is reset when the next process claims it, tables the test made
// included.
func TestAbandonedCopyIsResetWhenClaimed(t *testing.T) {
	ctx := context.Background()
	// Another suite running at the same time may take the copy between
	// the two processes here (a window of microseconds): then try again.
	for attempt := 0; ; attempt++ {
		dead, err := Open(ctx)
		require.NoError(t, err)
		name, err := dead.claim(ctx)
		require.NoError(t, err)
		conn, err := pgx.Connect(ctx, dead.url(name))
		require.NoError(t, err)
		_, err = conn.Exec(ctx, `INSERT INTO organizations (name) VALUES ('Left behind');
			CREATE TABLE pgbench_accounts (aid int PRIMARY KEY)`)
		require.NoError(t, err)
		require.NoError(t, conn.Close(ctx))
		dead.close() // its claims end with its session

		next := openAnother(t)
		n, err := strconv.Atoi(name[strings.LastIndexByte(name, '_')+1:])
		require.NoError(t, err)
		got, ok, err := next.take(ctx, n)
		require.NoError(t, err)
		if !ok && attempt < 3 {
			continue
		}
		require.True(t, ok, "copy %s taken by another process %d times", name, attempt+1)
		require.Equal(t, name, got)
		orgs, factories := counts(t, next.url(got))
		assert.Equal(t, [2]int{1, 0}, [2]int{orgs, factories}, "the template's rows only")
		conn, err = pgx.Connect(ctx, next.url(got))
		require.NoError(t, err)
		defer conn.Close(ctx)
		var tables int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pgbench%'`).Scan(&tables))
		assert.Zero(t, tables, "a table the test made is dropped")
		return
	}
}

// The databases of other migrations are dropped, except what a process of
// theirs is using: a copy it holds, or the template while it runs. The
// stale databases are kept between runs (made once, never dropped here),
// and dropStale is watched, not let drop: a DROP DATABASE costs every
// running test a checkpoint.
func TestStaleDatabasesNobodyUsesAreDropped(t *testing.T) {
	ctx := context.Background()
	const hash = "0000abcd0012" // no migrations hash to this in practice
	class := classOf([]byte{0, 0, 0xab, 0xcd})
	tmplName, copyName, heldName := Prefix+hash+"_t", Prefix+hash+"_1", Prefix+hash+"_2"
	for _, name := range []string{tmplName, copyName, heldName} {
		err := tmpl.admin(`CREATE DATABASE ` + name + ` TEMPLATE template0`)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P04" { // duplicate_database: made by an earlier run
			require.NoError(t, err)
		}
	}
	user, err := pgx.Connect(ctx, tmpl.url("postgres")) // a process of that checkout, running
	require.NoError(t, err)
	defer user.Close(ctx)
	_, err = user.Exec(ctx, `SELECT pg_advisory_lock_shared($1, $2), pg_advisory_lock($1, 2)`, class, inUse)
	require.NoError(t, err)
	dropped := func() []string {
		var names []string
		tmpl.dropStale(ctx, func(name string) error {
			if strings.HasPrefix(name, Prefix+hash) {
				names = append(names, name)
			}
			return nil
		})
		return names
	}
	assert.Equal(t, []string{copyName}, dropped(), "the unused copy only")

	_, err = user.Exec(ctx, `SELECT pg_advisory_unlock_shared($1, $2)`, class, inUse)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{tmplName, copyName}, dropped(), "the template too, now that no process uses it")
}
