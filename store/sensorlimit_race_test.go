package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The sensor cap was counted by each statement on its own snapshot, so two
// writes of one gateway's new serials that overlapped (the API's POST
// …/sensors/discover merge and the writer's temperatures or discoveries;
// or two discovers) each saw the room left before the other committed and
// each filled it: the gateway ended with more than
// gatewayd.MaxGatewaySensors live sensors ("A gateway keeps at most 4,096
// live sensors stored"). (Found by an audit, helper 5, whose test this is.)
//
// To make the overlap certain rather than likely, a third transaction
// holds an uncommitted row of serial 1 (a writer in flight); both store
// calls list serial 1 first, so each is waiting (on that row, or on the
// other, which waits on it) before the third transaction rolls back.
func TestConcurrentSensorWritesStayWithinTheGatewaysLimit(t *testing.T) {
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "CAP")
	max := gatewayd.MaxGatewaySensors
	t0 := time.Now().UTC().Truncate(time.Millisecond)

	// The gateway has 100 sensors of room left.
	fill := make([]gatewayd.SensorReport, 0, max-100)
	for i := range max - 100 {
		fill = append(fill, report(int64(1_000_000+i), ""))
	}
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0, Sensors: fill}})))
	require.Len(t, sensorsBySerial(t, s, g.ID), max-100)

	// Another writer's row of serial 1, not committed yet.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `INSERT INTO sensors (gateway_id, serial, name) VALUES ($1, 1, 'Sensor 1')`, g.ID)
	require.NoError(t, err)

	// A discovery merge (the API's discover) and temperatures (the
	// writer), each naming serial 1 and 150 new serials of its own.
	t1 := t0.Add(time.Minute)
	list := []gatewayd.SensorReport{report(1, "")}
	for i := range 150 {
		list = append(list, report(int64(2_000_000+i), ""))
	}
	temps := []gatewayd.Temperature{{GatewayID: g.ID, Serial: 1, Celsius: 20, At: t1}}
	for i := range 150 {
		temps = append(temps, gatewayd.Temperature{GatewayID: g.ID, Serial: int64(3_000_000 + i), Celsius: 20, At: t1})
	}
	errs := make(chan error, 2)
	go func() {
		_, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1, Sensors: list}})
		errs <- err
	}()
	go func() { _, err := s.RecordTemperatures(ctx, temps); errs <- err }()

	// Both are under way (waiting on serial 1's row, or on each other)
	// before the other writer finishes.
	testutil.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%sensors%'`).Scan(&n)
		return err == nil && n == 2
	}, 10*time.Second, "both sensor writes waiting on the in-flight row")
	require.NoError(t, tx.Rollback(ctx))

	for range 2 {
		err := <-errs
		if err != nil && !errors.Is(err, gatewayd.ErrSensorLimit) {
			require.NoError(t, err)
		}
	}
	got := len(sensorsBySerial(t, s, g.ID))
	assert.LessOrEqual(t, got, max, "live sensors of one gateway after two overlapping writes of new serials")
}
