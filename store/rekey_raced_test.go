package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// (Found by an audit, helper 7, whose test this is.) A row that changes
// between Rekey's read and its write is skipped by the
// conditional UPDATE (right: the change is not overwritten), but Rekey
// still counts it as re-sealed and never looks at it again. When the
// change left a value under a previous key (a gatewayd serve not yet
// restarted with the new key, or a second rekey run with the old
// settings, wrote it), Rekey reports every password re-sealed and none
// unreadable, so `gatewayd rekey` exits 0 and the operator removes the old
// key (README, "Rotating the encryption key", step 3): that gateway's
// password is then lost.
func TestRekeyDoesNotCountARowItDidNotWrite(t *testing.T) {
	ctx := context.Background()
	oldStore, pool := newStore(t) // sealed under testutil.Key
	fx := setup(t, oldStore)
	g, err := oldStore.CreateGateway(ctx, newGateway(fx.factory.ID, "RACED"))
	require.NoError(t, err)
	newKey := []byte("the new key, thirty-two bytes!!!")
	sealer, err := store.NewSealer(newKey, testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)
	oldSealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM gateways WHERE id = $1 FOR UPDATE`, g.ID)
	require.NoError(t, err)

	type result struct {
		res store.RekeyResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := st.Rekey(ctx, 10, nil)
		done <- result{res, err}
	}()
	testutil.Eventually(t, func() bool {
		var waiting bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'
			AND query LIKE 'UPDATE gateways SET password_encrypted%')`).Scan(&waiting))
		return waiting
	}, 20*time.Second, "Rekey's UPDATE waits for the held row")
	// A process still on the old key sets the password meanwhile.
	changed, err := oldSealer.Seal("set meanwhile under the old key")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE gateways SET password_encrypted = $2 WHERE id = $1`, g.ID, changed)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	var r result
	select {
	case r = <-done:
		require.NoError(t, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("Rekey did not finish")
	}
	var sealed string
	require.NoError(t, pool.QueryRow(ctx, `SELECT password_encrypted FROM gateways WHERE id = $1`, g.ID).Scan(&sealed))
	if sealer.Current(sealed) {
		return // re-read and re-sealed: nothing left under the old key
	}
	// Left under the old key: then Rekey must not say it re-sealed it.
	assert.Equal(t, 0, r.res.Resealed, "Rekey counts as re-sealed a row its UPDATE did not change (the value is still under the previous key)")
	assert.False(t, r.res.Resealed+r.res.Current > 0 && len(r.res.Unreadable) == 0 && !sealer.Current(sealed),
		"Rekey finished clean (rekey exits 0) while a password is still under the previous key: %s", sealed[:12])
}
