package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// Rotation end to end: passwords sealed as v1 (before key ids) and v2
// under an old key move to the new key; an interrupted run resumes where
// it stopped; a password no configured key opens is listed and left
// untouched; every password still opens to what was stored.
func TestRekey(t *testing.T) {
	ctx := context.Background()
	oldStore, pool := newStore(t) // testutil.Key: the old key
	f := setup(t, oldStore)
	want := map[string]string{} // gateway_id -> password
	for i := range 7 {
		gid := fmt.Sprintf("old-%d", i)
		_, err := oldStore.CreateGateway(ctx, newGateway(f.factory.ID, gid))
		require.NoError(t, err)
		want[gid] = "s3cret-" + gid
	}
	for i := range 3 {
		gid := fmt.Sprintf("v1-%d", i)
		_, err := oldStore.CreateGateway(ctx, newGateway(f.factory.ID, gid))
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $2 WHERE gateway_id = $1`, gid,
			sealV1(t, testutil.Key, "legacy-"+gid))
		require.NoError(t, err)
		want[gid] = "legacy-" + gid
	}
	lost := sealV1(t, []byte("a key nobody configured, 32 byte"), "gone")
	lostGW, err := oldStore.CreateGateway(ctx, newGateway(f.factory.ID, "lost"))
	require.NoError(t, err)
	// A deleted gateway's password is re-sealed too: the old key may be
	// the one that leaked. (One no key opens is not listed: see
	// TestRekeyCommand.)
	deleted, err := oldStore.CreateGateway(ctx, newGateway(f.factory.ID, "deleted"))
	require.NoError(t, err)
	_, err = oldStore.DeleteGateway(ctx, deleted.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $1 WHERE gateway_id = 'lost'`, lost)
	require.NoError(t, err)

	newKey := []byte("the new key, thirty-two bytes!!!")
	sealer, err := store.NewSealer(newKey, testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)

	// Interrupted after its first batch of 4.
	runCtx, cancel := context.WithCancel(ctx)
	batches := 0
	res, err := st.Rekey(runCtx, 4, func(store.RekeyResult) { batches++; cancel() })
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Equal(t, 1, batches)
	// Rows go in id order (random uuids): "lost" may be in this batch.
	first := res.Resealed
	assert.Equal(t, 4, first+len(res.Unreadable))
	assert.Zero(t, res.Current)
	assert.Equal(t, first, countUnder(t, pool, newKey))

	// Resumed: the finished batch is skipped, the rest re-sealed.
	res, err = st.Rekey(ctx, 4, nil)
	require.NoError(t, err)
	assert.Equal(t, 11-first, res.Resealed)
	assert.Equal(t, first, res.Current)
	assert.Equal(t, []store.UnreadableGateway{{ID: lostGW.ID, GatewayID: "lost"}}, res.Unreadable)
	assert.Equal(t, 11, countUnder(t, pool, newKey), "the deleted gateway's too")
	var stillLost string
	require.NoError(t, pool.QueryRow(ctx, `SELECT password_encrypted FROM gateways WHERE gateway_id = 'lost'`).Scan(&stillLost))
	assert.Equal(t, lost, stillLost, "an unreadable value is left as it was")

	// The new key alone opens every re-sealed password.
	only, err := store.NewSealer(newKey)
	require.NoError(t, err)
	for gid, pw := range want {
		var sealed string
		require.NoError(t, pool.QueryRow(ctx, `SELECT password_encrypted FROM gateways WHERE gateway_id = $1`, gid).Scan(&sealed))
		plain, err := only.Open(sealed)
		require.NoError(t, err, gid)
		assert.Equal(t, pw, plain, gid)
	}

	// A second run has nothing to do.
	res, err = st.Rekey(ctx, 4, nil)
	require.NoError(t, err)
	assert.Equal(t, store.RekeyResult{Current: 11, Unreadable: []store.UnreadableGateway{{ID: lostGW.ID, GatewayID: "lost"}}}, res)
}

func countUnder(t *testing.T, pool *pgxpool.Pool, key []byte) int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT password_encrypted FROM gateways`)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		if strings.HasPrefix(s, "v2:"+store.KeyID(key)+":") {
			n++
		}
	}
	require.NoError(t, rows.Err())
	return n
}
