package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/google/uuid"
)

// A manual reading requested while its gateway is being deleted (API.md
// §4 cascades, §8 readings) must get a clear answer: the reading is
// stored (and later fails) or the sensor is gone (404). It must never be
// SERVICE_UNAVAILABLE: the database is up and answering; 503 is for
// "unreachable, refusing new connections … or did not answer in time"
// (API.md §3).
//
// CreateReading share-locked the sensor row and then, at the end of the
// same statement, the INSERT's foreign key check key-share-locked the
// gateway row. DeleteGateway locks the gateway FOR UPDATE first and then
// updates its sensors. Met in between, each waited for the other:
// PostgreSQL aborted one with 40P01 (deadlock detected). DeleteGateway
// runs again (inTx); CreateReading did not, and its 40P01 was classified
// as ErrUnavailable (503). (Found by an audit, helper 9, whose tests
// these are.)
//
// The interleaving is made deterministic by a third session that
// share-locks the sensor: the deletion holds the gateway and waits for
// the sensor; the reading's insert then share-locks the sensor too (a
// share lock does not wait for a share lock) and waits for the gateway;
// the third session lets go, and the two wait for each other.
func TestReadingRequestedDuringGatewayDeleteIsNotUnavailable(t *testing.T) {
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "deadlock-gw")
	_, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{report(7, "a")}}})
	require.NoError(t, err)
	sensors, err := s.GatewaySensors(ctx, g.ID)
	require.NoError(t, err)
	require.Len(t, sensors, 1)
	sensor := sensors[0]

	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = holder.Exec(ctx, `SELECT 1 FROM sensors WHERE id = $1 FOR SHARE`, sensor.ID)
	require.NoError(t, err)

	waiting := func(sqlPart string) func() bool {
		return func() bool {
			var n int
			err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`, "%"+sqlPart+"%").Scan(&n)
			return err == nil && n > 0
		}
	}

	deleted := make(chan error, 1)
	go func() { deleted <- errOf(s.DeleteGateway(ctx, g.ID)) }()
	require.Eventually(t, waiting("UPDATE sensors SET deleted_at"), 10*time.Second, 5*time.Millisecond,
		"the deletion holds the gateway and waits for the sensor")

	type created struct {
		r   gatewayd.Reading
		err error
	}
	reading := make(chan created, 1)
	go func() {
		r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
		reading <- created{r, err}
	}()
	require.Eventually(t, waiting("INSERT INTO readings"), 10*time.Second, 5*time.Millisecond,
		"the reading's insert waits for the gateway")

	require.NoError(t, holder.Rollback(ctx))

	var got created
	select {
	case got = <-reading:
	case <-time.After(30 * time.Second):
		t.Fatal("CreateReading did not return")
	}
	require.NoError(t, <-deleted, "the deletion succeeds")
	if got.err != nil {
		assert.False(t, errors.Is(got.err, gatewayd.ErrUnavailable),
			"a reading racing its gateway's deletion is answered as a database outage (503): %v", got.err)
		assert.ErrorIs(t, got.err, gatewayd.ErrNotFound, "if it is refused, the sensor is gone (404)")
	}
}
