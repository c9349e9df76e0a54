package store_test

// (Found by an audit, helper 3, whose test this is.)

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// The cycle of TestGatewayDeleteAndDiscoveryMergeDoNotDeadlock, with
// PostgreSQL's deadlock detection put off (deadlock_timeout 15 s instead
// of 1 s): a deletion and a discovery merge that met in a deadlock were
// answered only once PostgreSQL had noticed it, a second later on every
// meeting, and the loser ran again; a DELETE met by merges on a loaded box
// spent its 5 s budget so and was answered 503, and the writer's whole
// batch was rolled back. Locked in one order (the new sensors' gateways
// first, as the deletion locks its gateways first), the two never form
// a cycle and wait for each other only. (Found by an audit, helper 3.)
func TestGatewayDeleteAndMergeNeverWaitForDeadlockDetection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(tmpl.New(t))
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["deadlock_timeout"] = "15s"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	s := store.New(pool, sealer)
	fx := setup(t, s)
	g, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "DL-audit"))
	require.NoError(t, err)
	_, err = s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{report(1, "one"), report(2, "two")}}})
	require.NoError(t, err)
	known := sensorsBySerial(t, s, g.ID)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE`, known[2].ID)
	require.NoError(t, err)

	waiting := lockWaiter(t, pool)
	merged := make(chan error, 1)
	go func() {
		_, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
			Sensors: []gatewayd.SensorReport{report(1, "one"), report(2, "two"), report(9, "new")}}})
		merged <- err
	}()
	testutil.Eventually(t, waiting("%INSERT INTO sensors%"), 10*time.Second, "the merge waits for sensor 2")
	deleted := make(chan error, 1)
	go func() { _, err := s.DeleteGateway(ctx, g.ID); deleted <- err }()
	// Waiting for the sensors (the cycle) or for the gateway (no cycle).
	testutil.Eventually(t, waiting("%SET deleted_at = now()%"), 10*time.Second, "the deletion waits")
	require.NoError(t, tx.Rollback(ctx))

	var errMerge, errDelete error
	mergeDone, deleteDone := false, false
	testutil.Eventually(t, func() bool {
		select {
		case errMerge = <-merged:
			mergeDone = true
		case errDelete = <-deleted:
			deleteDone = true
		default:
		}
		return mergeDone && deleteDone
	}, 10*time.Second, "the merge and the deletion done, neither waiting for deadlock detection")
	assert.NoError(t, errDelete)
	assert.NoError(t, errMerge)
	left, err := s.GatewaySensors(ctx, g.ID)
	require.NoError(t, err)
	assert.Empty(t, left)
}
