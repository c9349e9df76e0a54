package store_test

import (
	"context"
	neturl "net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// DATABASE_MAX_CONNS sizes the pool unless the URL has pool_max_conns.
func TestConnectPoolSize(t *testing.T) {
	t.Parallel()
	url := tmpl.New(t)
	ctx := context.Background()
	for _, tc := range []struct {
		url  string
		max  int
		want int32
	}{
		{url, 7, 7},
		{withQuery(url, "pool_max_conns", "3"), 7, 3},
	} {
		pool, err := store.Connect(ctx, tc.url, 5*time.Second, tc.max)
		require.NoError(t, err)
		assert.Equal(t, tc.want, pool.Config().MaxConns, tc.url)
		pool.Close()
	}
}

func withQuery(raw, k, v string) string {
	u, _ := neturl.Parse(raw)
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// A DATABASE_URL may leave the host out, as libpq's may (README): the
// server is then named by host= (a Unix socket's directory, or here the
// test server's address) or is pgx's default.
func TestConnectWithoutAHost(t *testing.T) {
	t.Parallel()
	u, err := neturl.Parse(tmpl.New(t))
	require.NoError(t, err)
	host, port := u.Hostname(), u.Port()
	u.Host = ""
	q := u.Query()
	q.Set("host", host)
	if port != "" {
		q.Set("port", port)
	}
	u.RawQuery = q.Encode()
	ctx := context.Background()
	pool, err := store.Connect(ctx, u.String(), 5*time.Second, 2)
	require.NoError(t, err, u.Redacted())
	defer pool.Close()
	var db string
	require.NoError(t, pool.QueryRow(ctx, `SELECT current_database()`).Scan(&db))
	assert.Equal(t, u.Path[1:], db)
}

// A database the server does not have is unavailability (serve waits for
// it at start) that says which kind, so a command's hint can say "create
// it" rather than "start PostgreSQL"; a server that does not answer is
// not that kind.
func TestConnectToAMissingDatabase(t *testing.T) {
	t.Parallel()
	u, err := neturl.Parse(tmpl.New(t))
	require.NoError(t, err)
	u.Path = "/gwt_no_such_database"
	ctx := context.Background()
	_, err = store.Connect(ctx, u.String(), 5*time.Second, 2)
	require.Error(t, err)
	assert.ErrorIs(t, err, gatewayd.ErrUnavailable)
	assert.ErrorIs(t, err, store.ErrNoDatabase)

	u.Host = "127.0.0.1:1" // nothing listens there
	u.Path = "/gatewayd"
	_, err = store.Connect(ctx, u.String(), 5*time.Second, 2)
	require.Error(t, err)
	assert.ErrorIs(t, err, gatewayd.ErrUnavailable)
	assert.NotErrorIs(t, err, store.ErrNoDatabase)
}
