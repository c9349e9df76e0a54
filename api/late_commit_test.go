package api_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// A PUT whose database deadline runs out while its row is locked is
// answered 503, and the store forgets the factory then. pgx gives up on
// the statement by cutting its own connection and sending PostgreSQL a
// cancel request; when that request does not arrive, the statement (sent
// with its Sync, so in an implicit transaction of its own) still runs
// once the lock comes free, and commits. A GET between the forget and
// that commit kept the old row, which then answered every GET for
// READ_CACHE_TTL after gatewayd's own write committed. Now a write whose
// outcome is unknown keeps its kind out of the cache for a while
// (store/recent.go, unsureFor).
//
// The lock is a transaction that changes nothing and rolls back (as a
// cascade delete on a loaded database holds the rows); the only write is
// the PUT's. (Found by an audit, helper 1, whose test this is.)
func TestKeptFactoryIsNotKeptWhileAPutMayStillCommit(t *testing.T) {
	t.Parallel()
	e, direct, cutCancels := cancelLosingEnv(t)
	ctx := context.Background()
	org := e.org("Audit Org")
	fid := e.factory(org, "before")
	cutCancels()

	tx, err := direct.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM factories WHERE id = $1 FOR UPDATE`, fid)
	require.NoError(t, err)

	r := e.do("PUT", "/api/factories/"+fid, map[string]any{"name": "after"})
	require.Equal(t, 503, r.status, "the PUT waited past its deadline: %s", r.body)

	// A dashboard's poll, after the PUT's answer and the store's forget.
	r = e.do("GET", "/api/factories/"+fid, nil)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, "before", r.json(t)["name"])

	// The lock goes; the PUT's statement, still on the server, commits.
	require.NoError(t, tx.Rollback(ctx))
	require.Eventually(t, func() bool {
		var name string
		return direct.QueryRow(ctx, `SELECT name FROM factories WHERE id = $1`, fid).Scan(&name) == nil && name == "after"
	}, 5*time.Second, 20*time.Millisecond, "the PUT's UPDATE commits once the row is free")

	r = e.do("GET", "/api/factories/"+fid, nil)
	require.Equal(t, 200, r.status, string(r.body))
	require.Equal(t, "after", r.json(t)["name"],
		"gatewayd's own PUT is committed, yet the GET answers the row kept before the commit")
}

// cancelLosingEnv is the API over a pool whose connections go through a
// testutil.Proxy, with a database deadline of 400 ms, and the pool that
// reaches PostgreSQL directly. cutCancels warms the pool's connections and
// then refuses new ones, so pgx's cancel requests are lost.
func cancelLosingEnv(t *testing.T) (e *env, direct *pgxpool.Pool, cutCancels func()) {
	t.Helper()
	direct, dbURL := tmpl.Pool(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	proxy := testutil.NewProxy(t, "127.0.0.1:0", u.Host)
	u.Host = proxy.Addr()
	ctx := context.Background()
	pool, err := store.Connect(ctx, u.String(), 5*time.Second, 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	e = &env{t: t, st: store.New(pool, sealer, keptReads), rt: &fakeRuntime{ready: true}, logs: &testutil.SyncBuffer{}}
	e.app = api.New(e.st, e.rt, zerolog.New(e.logs), api.Options{DBTimeout: 400 * time.Millisecond})
	return e, direct, func() {
		// Warm the pool's connections so the requests after this need no
		// new one.
		var held []*pgxpool.Conn
		for range 4 {
			c, err := pool.Acquire(ctx)
			require.NoError(t, err)
			held = append(held, c)
		}
		for _, c := range held {
			c.Release()
		}
		proxy.RefuseNew()
	}
}

// A disconnect whose database deadline runs out while the gateway's row
// is locked is answered 503, and API.md §4 says the connection is then
// left as it was. Sent as a statement of its own, the UPDATE still ran
// once the lock came free and committed (the cancel request lost, as
// above): the disconnect answered 503 was stored, and the runtime, never
// told, acted on it at its next reconciliation. Now the UPDATE runs in a
// transaction whose COMMIT is sent only after it answered, so a cut
// connection leaves it uncommitted. (Found by an audit, helper 1.)
func TestADisconnectCutAtItsDeadlineIsNotStoredLater(t *testing.T) {
	t.Parallel()
	e, direct, cutCancels := cancelLosingEnv(t)
	ctx := context.Background()
	fid := e.factory(e.org("Late Org"), "Late Factory")
	gid := e.gateway(fid, "late-1")["id"].(string)
	cutCancels()

	tx, err := direct.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM gateways WHERE id = $1 FOR UPDATE`, gid)
	require.NoError(t, err)

	r := e.do("POST", "/api/gateways/"+gid+"/disconnect", nil)
	require.Equal(t, 503, r.status, "the disconnect waited past its deadline: %s", r.body)

	require.NoError(t, tx.Rollback(ctx))
	// The UPDATE, still on the server, runs now; its backend, whose
	// client is gone, ends once it has (committed or not): the row is
	// read after that.
	require.Eventually(t, func() bool {
		var left int
		return direct.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%SET desired_state%'`).Scan(&left) == nil && left == 0
	}, 10*time.Second, 20*time.Millisecond, "the cut disconnect's backend ends")
	var desired string
	require.NoError(t, direct.QueryRow(ctx, `SELECT desired_state FROM gateways WHERE id = $1`, gid).Scan(&desired))
	assert.Equal(t, "CONNECTED", desired, "a disconnect answered 503 left the gateway as it was")
}
