package store_test

import (
	"bytes"
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

// lockWaiter returns a condition: some statement of this database whose
// text is like like waits for a lock.
func lockWaiter(t *testing.T, pool *pgxpool.Pool) func(like string) func() bool {
	return func(like string) func() bool {
		return func() bool {
			var n int
			require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`, like).Scan(&n))
			return n > 0
		}
	}
}

// (Found by an audit, helper 5, whose tests these are.)
// deleteFactoriesContents said the cascade locks its
// gateways in id order "and the sensor writers ... take their locks in id
// order too (no deadlock)". But a discovery merge holds the row locks of
// the existing sensors it updated (gateway G1) until its statement's end,
// where the foreign-key checks of the sensors it inserted (for G2) take
// their key-share locks on the gateways. A factory deletion that locks
// G1 and G2 FOR UPDATE in between then waits for G1's sensor rows held by
// the merge, while the merge waits for G2 held by the deletion:
// PostgreSQL aborts one of them (40P01), so either DELETE /api/factories/:id
// answers 503 or every gateway's discovery in the writer's batch is rolled
// back. The row lock held by tx below only widens the window between the
// merge's updates and its foreign-key checks so that the interleaving is
// certain; on a busy service the statement's own run time is the window.
// PostgreSQL aborts one of the two (40P01); the store runs it again.
func TestFactoryDeleteAndDiscoveryMergeDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	fx := setup(t, s)
	a, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "DL-A"))
	require.NoError(t, err)
	b, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "DL-B"))
	require.NoError(t, err)
	g1, g2 := a, b // g1 < g2 in the order both sides lock in
	if bytes.Compare(g1.ID[:], g2.ID[:]) > 0 {
		g1, g2 = b, a
	}
	// The writer's merge: updates g1's sensor 1, waits for sensor 2, and
	// would then insert g2's new sensor (its key check at the end).
	mergeMeetsDelete(t, s, pool, g1, []gatewayd.Discovery{
		{GatewayID: g1.ID, At: time.Now(), Sensors: []gatewayd.SensorReport{report(1, "one"), report(2, "two")}},
		{GatewayID: g2.ID, At: time.Now(), Sensors: []gatewayd.SensorReport{report(9, "new")}},
	}, func() error { _, err := s.DeleteFactory(ctx, fx.factory.ID); return err })
	// Both done, the factory's gateways and all their sensors are gone.
	for _, g := range []gatewayd.Gateway{g1, g2} {
		left, err := s.GatewaySensors(ctx, g.ID)
		require.NoError(t, err)
		assert.Empty(t, left)
	}
}

// The same cycle with one gateway: DELETE /api/gateways/:id of a gateway
// whose discovery updates a known sensor and inserts a new one.
func TestGatewayDeleteAndDiscoveryMergeDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	fx := setup(t, s)
	g, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "DL-1"))
	require.NoError(t, err)
	mergeMeetsDelete(t, s, pool, g, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{report(1, "one"), report(2, "two"), report(9, "new")}}},
		func() error { _, err := s.DeleteGateway(ctx, g.ID); return err })
	left, err := s.GatewaySensors(ctx, g.ID)
	require.NoError(t, err)
	assert.Empty(t, left)
}

// mergeMeetsDelete plays the cycle: g has two known sensors, another
// transaction holds the second for a moment (as a sensor PUT, a
// temperature write or another merge does), merge runs and waits for it,
// and del runs meanwhile and waits for the sensors; then the holder lets
// go. Neither may fail.
func mergeMeetsDelete(t *testing.T, s *store.Store, pool *pgxpool.Pool, g gatewayd.Gateway, merge []gatewayd.Discovery, del func() error) {
	t.Helper()
	ctx := context.Background()
	_, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{report(1, "one"), report(2, "two")}}})
	require.NoError(t, err)
	known := sensorsBySerial(t, s, g.ID)
	require.Len(t, known, 2)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE`, known[2].ID)
	require.NoError(t, err)

	waiting := lockWaiter(t, pool)
	merged := make(chan error, 1)
	go func() {
		_, err := s.MergeDiscoveries(ctx, merge)
		merged <- err
	}()
	testutil.Eventually(t, waiting("%INSERT INTO sensors%"), 10*time.Second, "the merge waits for sensor 2")
	deleted := make(chan error, 1)
	go func() { deleted <- del() }()
	// For the merge's gateways, whose key-share locks the merge takes
	// first since an audit (helper 3); before, for the sensors.
	testutil.Eventually(t, waiting("%SET deleted_at = now()%"), 10*time.Second, "the deletion waits")
	require.NoError(t, tx.Rollback(ctx))

	errMerge, errDelete := <-merged, <-deleted
	assert.NoError(t, errDelete, "the deletion failed (503 to the client)")
	assert.NoError(t, errMerge, "the discovery merge failed (the writer's whole batch rolled back)")
}

// A gateway's PUT and its connect or disconnect lock the row as their
// UPDATE does (FOR NO KEY UPDATE), not FOR UPDATE, which also waits for
// every transaction whose foreign-key check holds the gateway: a sensor
// write in the writer's batch, seconds long on a loaded machine, held
// them past the request's timeout (503).
func TestGatewayUpdatesDoNotWaitForSensorWrites(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	fx := setup(t, s)
	g, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "NW-1"))
	require.NoError(t, err)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `INSERT INTO sensors (gateway_id, serial, name) VALUES ($1, 1, 'held')`, g.ID)
	require.NoError(t, err, "a sensor insert: its key check holds the gateway until the end of the transaction")

	quick, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = s.UpdateGateway(quick, g.ID, store.GatewayPatch{Name: store.Some("renamed")})
	require.NoError(t, err, "the PUT")
	_, _, err = s.SetDesiredState(quick, g.ID, gatewayd.DesiredDisconnected)
	require.NoError(t, err, "the disconnect")
}
