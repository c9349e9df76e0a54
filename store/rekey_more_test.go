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

// Rekey lists the live gateways whose password no configured key opens,
// for an operator to set again; a deleted one, which can never be set
// again, is not listed (nor does it fail the run).
func TestRekeyListsOnlyLiveUnreadableGateways(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	fx := setup(t, s)
	lost := sealV1(t, []byte("a key nobody configured, 32 byte"), "gone")
	live, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "LOST-LIVE"))
	require.NoError(t, err)
	dead, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "LOST-DELETED"))
	require.NoError(t, err)
	_, err = s.DeleteGateway(ctx, dead.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $1`, lost)
	require.NoError(t, err)

	res, err := s.Rekey(ctx, 10, nil)
	require.NoError(t, err)
	assert.Equal(t, []store.UnreadableGateway{{ID: live.ID, GatewayID: "LOST-LIVE"}}, res.Unreadable)
}

// Rekey leaves a row changed meanwhile to that change: a password set
// (say by a PUT) after Rekey read the row but before it wrote it is not
// overwritten with the re-sealed old one.
func TestRekeyLeavesAConcurrentChangeAlone(t *testing.T) {
	_, sealer, sealed := rekeyRaced(t, "MOVING", func(current, _ *store.Sealer) (string, error) {
		return current.Seal("set meanwhile")
	})
	plain, err := sealer.Open(sealed)
	require.NoError(t, err)
	assert.Equal(t, "set meanwhile", plain)
}

// rekeyRaced runs Rekey to a new key while another transaction holds a
// gateway's row, so that Rekey's UPDATE waits after its read; that
// transaction then sets the password to what meanwhile seals (given the
// new key's sealer and the old key's) and commits. It returns Rekey's
// result, the new key's sealer and the password stored at the end.
func rekeyRaced(t *testing.T, name string, meanwhile func(current, old *store.Sealer) (string, error)) (store.RekeyResult, *store.Sealer, string) {
	t.Helper()
	ctx := context.Background()
	oldStore, pool := newStore(t) // sealed under testutil.Key
	fx := setup(t, oldStore)
	g, err := oldStore.CreateGateway(ctx, newGateway(fx.factory.ID, name))
	require.NoError(t, err)
	newKey := []byte("the new key, thirty-two bytes!!!")
	sealer, err := store.NewSealer(newKey, testutil.Key)
	require.NoError(t, err)
	oldSealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)

	// Hold the row, so that Rekey's UPDATE waits after its SELECT.
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
		select {
		case r := <-done:
			t.Fatalf("Rekey finished without waiting for the held row: %v", r.err)
		default:
		}
		var waiting bool
		require.NoError(t, pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'
			AND query LIKE 'UPDATE gateways SET password_encrypted%')`).Scan(&waiting))
		return waiting
	}, 20*time.Second, "Rekey's UPDATE waits for the held row")
	changed, err := meanwhile(sealer, oldSealer)
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
	return r.res, sealer, sealed
}
