package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// A gateway that names new serials at every discovery and in every
// notification (hostile, or broken) grew its stored sensors without end:
// each list of up to 4,096 new serials, each NOT_DYN_TEMP of a new
// serial, inserted rows, and the database every gateway shares filled up
// with one gateway's inventions (mission: "a hostile gateway harms only
// itself"). A gateway keeps at most gatewayd.MaxGatewaySensors live
// sensors; new serials past that are not stored, said with
// ErrSensorLimit, while what is known goes on being updated and other
// gateways are not affected.
func TestStoredSensorsOfAGatewayAreBounded(t *testing.T) {
	ctx := context.Background()
	s, _, fx, g := withGateway(t, "L1")
	other, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "L2"))
	require.NoError(t, err)
	max := gatewayd.MaxGatewaySensors
	t0 := time.Now().UTC().Truncate(time.Millisecond)

	first := make([]gatewayd.SensorReport, 0, max-10)
	for i := range max - 10 {
		first = append(first, report(int64(i+1), ""))
	}
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0, Sensors: first}})))

	// Five known serials and 100 new ones: ten of the new fit, the lowest
	// serials first; the known are updated.
	t1 := t0.Add(time.Minute)
	next := []gatewayd.SensorReport{}
	for i := range 5 {
		next = append(next, report(int64(i+1), "Known"))
	}
	for i := range 100 {
		next = append(next, report(int64(100_000+i), ""))
	}
	refs, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{
		{GatewayID: g.ID, At: t1, Sensors: next},
		{GatewayID: other.ID, At: t1, Sensors: []gatewayd.SensorReport{report(7, "")}},
	})
	require.ErrorIs(t, err, gatewayd.ErrSensorLimit)
	assert.Contains(t, err.Error(), "90 new sensors")
	assert.Contains(t, err.Error(), g.ID.String())
	assert.NotContains(t, err.Error(), other.ID.String())
	got := sensorsBySerial(t, s, g.ID)
	require.Len(t, got, max)
	for i := range 10 {
		assert.Contains(t, got, int64(100_000+i))
	}
	assert.NotContains(t, got, int64(100_010))
	assert.Equal(t, "Known", got[1].Name, "a known serial is still updated")
	assert.True(t, t1.Equal(got[5].LastSeenAt))
	assert.False(t, got[6].Connected, "a serial missing from the list is still marked disconnected")
	assert.Len(t, sensorsBySerial(t, s, other.ID), 1, "another gateway's new sensor is stored")
	// The changed sensors are told (for events), the dropped ones are not.
	assert.Len(t, refs, 5+10+(max-10-5)+1)
	for _, r := range refs {
		assert.NotZero(t, r.ID)
	}

	// Temperatures: a known serial's is stored, a new serial is not, and
	// a sighting of a new serial neither.
	t2 := t1.Add(time.Minute)
	refs, err = s.RecordTemperatures(ctx, []gatewayd.Temperature{
		{GatewayID: g.ID, Serial: 1, Celsius: 21.5, At: t2},
		{GatewayID: g.ID, Serial: 200_000, Celsius: 30, At: t2},
		{GatewayID: g.ID, Serial: 200_001, At: t2, Sighting: true},
		{GatewayID: other.ID, Serial: 8, Celsius: 19, At: t2},
	})
	require.ErrorIs(t, err, gatewayd.ErrSensorLimit)
	assert.Contains(t, err.Error(), "2 new sensors")
	got = sensorsBySerial(t, s, g.ID)
	assert.Len(t, got, max)
	assert.Equal(t, 21.5, *got[1].LastTemperatureC)
	assert.Equal(t, 19.0, *sensorsBySerial(t, s, other.ID)[8].LastTemperatureC)
	assert.Len(t, refs, 2)

	// A reading pushed for a new serial is not stored (it has no sensor
	// to belong to); one of a known serial is.
	now := time.Now()
	pushed := func(serial int64) gatewayd.ReadingUpdate {
		return gatewayd.ReadingUpdate{Serial: serial, Reading: gatewayd.Reading{ID: uuid.New(), GatewayID: g.ID,
			Trigger: gatewayd.TriggerGateway, Status: gatewayd.ReadingFailed, RequestedAt: now, CompletedAt: &now}}
	}
	known, unknown := pushed(3), pushed(300_000)
	done, err := s.SaveReadings(ctx, []gatewayd.ReadingUpdate{known, unknown})
	require.ErrorIs(t, err, gatewayd.ErrSensorLimit)
	assert.Contains(t, err.Error(), "1 new sensors")
	require.Len(t, done, 1)
	assert.Equal(t, known.Reading.ID, done[0].ID)
	_, err = s.GetReading(ctx, unknown.Reading.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	assert.Len(t, sensorsBySerial(t, s, g.ID), max)

	// Known serials only: no error at all.
	require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{{GatewayID: g.ID, Serial: 2, Celsius: 20, At: t2}})))
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t2, Sensors: first[:3]}})))
}

// repeatedWork is the most rows one node of an EXPLAIN (ANALYZE, FORMAT
// JSON) plan produced over its loops, among the nodes that ran more than
// once: what a statement does again for each row it reads. (The rows of
// nodes that ran once depend on what else the database holds.)
func repeatedWork(node map[string]any) float64 {
	rows, _ := node["Actual Rows"].(float64)
	loops, _ := node["Actual Loops"].(float64)
	most := 0.0
	if loops > 1 {
		most = rows * loops
	}
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			most = max(most, repeatedWork(k.(map[string]any)))
		}
	}
	return most
}

// A gateway at the limit that names 4,096 new serials: the inserts'
// room count ran as a join filter, once per row, each counting the
// gateway's 4,096 sensors (16.7 M index entries: 2–7 s a statement on the
// writer's goroutine, at every flush, for as long as the gateway kept
// naming new serials; found making the runtime's shutdown wait for it).
// No part of either statement now runs again for each row and reads the
// gateway's sensors each time: counted from the plan, not timed.
func TestSensorInsertsAtTheLimitDoLinearWork(t *testing.T) {
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "LIN")
	max := gatewayd.MaxGatewaySensors
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	fill := make([]gatewayd.SensorReport, 0, max)
	for i := range max {
		fill = append(fill, report(int64(i+1), ""))
	}
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0, Sensors: fill}})))

	gws, serials := make([]uuid.UUID, max), make([]int64, max)
	temps, ats := make([]float64, max), make([]time.Time, max)
	names, parts := make([]string, max), make([]string, max)
	rates, samples, connected := make([]*float64, max), make([]*int32, max), make([]bool, max)
	for i := range max {
		gws[i], serials[i], temps[i], ats[i] = g.ID, int64(9_000_000+i), 20, t0
		names[i], connected[i] = "named", true
	}
	for name, run := range map[string]func() (string, []any){
		"temperatures": func() (string, []any) { return store.TemperatureSQL(), []any{gws, serials, temps, ats} },
		"discovery": func() (string, []any) {
			return store.MergeSQL(), []any{gws, serials, names, parts, rates, samples, connected, ats, true}
		},
	} {
		sql, args := run()
		var out []byte
		tx, err := pool.Begin(ctx) // rolled back: EXPLAIN ANALYZE runs the statement
		require.NoError(t, err)
		require.NoError(t, tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&out))
		require.NoError(t, tx.Rollback(ctx))
		var plans []map[string]any
		require.NoError(t, json.Unmarshal(out, &plans))
		work := repeatedWork(plans[0]["Plan"].(map[string]any))
		t.Logf("%s: at most %.0f rows from one repeated node for %d new serials", name, work, max)
		assert.Less(t, work, float64(4*max), "%s: a node repeated for each of %d new serials past the limit", name, max)
	}
	assert.Len(t, sensorsBySerial(t, s, g.ID), max)
}
