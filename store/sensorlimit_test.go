package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
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
