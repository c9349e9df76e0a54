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

func report(serial int64, name string) gatewayd.SensorReport {
	rate, samples := 25600.0, int64(8192)
	return gatewayd.SensorReport{Serial: serial, Name: name, PartNumber: "TA-CE-WS-1", ReadRateHz: &rate, Samples: &samples, Connected: true}
}

func sensorsBySerial(t *testing.T, s *store.Store, gw uuid.UUID) map[int64]gatewayd.Sensor {
	t.Helper()
	list, err := s.GatewaySensors(context.Background(), gw)
	require.NoError(t, err)
	out := map[int64]gatewayd.Sensor{}
	for _, x := range list {
		out[x.Serial] = x
	}
	return out
}

func TestDiscoveryMergeRules(t *testing.T) {
	ctx := context.Background()
	s, _, fx, g := withGateway(t, "S1")
	other, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "S2"))
	require.NoError(t, err)
	t0 := time.Now().UTC().Truncate(time.Millisecond)

	// New serials are inserted, per gateway; the same serial on two
	// gateways is two sensors.
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{
		{GatewayID: g.ID, At: t0, Sensors: []gatewayd.SensorReport{report(1, "Pump A"), report(2, ""), report(2, "Fan B")}},
		{GatewayID: other.ID, At: t0, Sensors: []gatewayd.SensorReport{report(1, "Elsewhere")}},
	})))
	got := sensorsBySerial(t, s, g.ID)
	require.Len(t, got, 2)
	assert.Equal(t, "Pump A", got[1].Name)
	assert.Equal(t, "Fan B", got[2].Name, "a serial listed twice: the last entry wins")
	assert.True(t, got[1].Connected)
	assert.Equal(t, 25600.0, *got[1].ReadRateHz)
	assert.Equal(t, 8192, *got[1].Samples)
	assert.Equal(t, "TA-CE-WS-1", *got[1].PartNumber)
	assert.True(t, t0.Equal(got[1].FirstSeenAt))
	assert.Len(t, sensorsBySerial(t, s, other.ID), 1)

	// A sample count no int4 holds is unknown, not wrapped to another one.
	for _, n := range []int64{1<<32 + 1, -5} {
		odd := report(9, "Odd")
		odd.Samples = &n
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: other.ID, At: t0, Sensors: []gatewayd.SensorReport{report(1, "Elsewhere"), odd}}})))
		assert.Nil(t, sensorsBySerial(t, s, other.ID)[9].Samples, "%d samples", n)
	}

	// An operator's name is kept (through later patches that set no
	// name, too); a gateway's rename is taken otherwise.
	_, err = s.UpdateSensor(ctx, got[1].ID, store.SensorPatch{Name: store.Some("Main pump")})
	require.NoError(t, err)
	_, err = s.UpdateSensor(ctx, got[1].ID, store.SensorPatch{Metadata: store.Some(json.RawMessage(`{"line":4}`))})
	require.NoError(t, err)
	t1 := t0.Add(time.Minute)
	r1 := report(1, "Pump A renamed")
	r1.ReadRateHz = ptr(12800.0)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{
		{GatewayID: g.ID, At: t1, Sensors: []gatewayd.SensorReport{r1, report(3, "")}},
	})))
	got = sensorsBySerial(t, s, g.ID)
	require.Len(t, got, 3, "nothing is deleted")
	assert.Equal(t, "Main pump", got[1].Name)
	assert.Equal(t, 12800.0, *got[1].ReadRateHz)
	assert.True(t, t1.Equal(got[1].LastSeenAt))
	assert.True(t, t0.Equal(got[1].FirstSeenAt), "first seen stays")
	assert.False(t, got[2].Connected, "missing from the answer: disconnected")
	assert.True(t, t0.Equal(got[2].LastSeenAt))
	assert.Equal(t, "Sensor 3", got[3].Name, "no name reported: a placeholder")
	assert.True(t, sensorsBySerial(t, s, other.ID)[1].Connected, "another gateway's discovery is its own")

	// A rate or sample count the gateway left out leaves the stored one.
	bare := report(1, "")
	bare.ReadRateHz, bare.Samples = nil, nil
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{
		{GatewayID: g.ID, At: t1.Add(time.Second), Sensors: []gatewayd.SensorReport{bare}},
	})))
	kept := sensorsBySerial(t, s, g.ID)[1]
	assert.Equal(t, 12800.0, *kept.ReadRateHz, "rate kept")
	assert.Equal(t, 8192, *kept.Samples, "count kept")

	// An empty answer ([]) disconnects every sensor of that gateway.
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1.Add(time.Minute)}})))
	for serial, x := range sensorsBySerial(t, s, g.ID) {
		assert.False(t, x.Connected, "serial %d", serial)
	}
	// A discovery of a deleted gateway is skipped, not an error.
	require.NoError(t, errOf(s.DeleteGateway(ctx, other.ID)))
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{
		{GatewayID: other.ID, At: t1, Sensors: []gatewayd.SensorReport{report(9, "ghost")}}})))
	list, total, err := s.ListSensors(ctx, store.SensorFilter{GatewayID: &other.ID}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 0, total, "a deleted gateway's sensors are deleted with it")
	assert.Empty(t, list)
}

func TestTemperaturesInsertUnknownSerials(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "T1")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0, Sensors: []gatewayd.SensorReport{report(1, "A")}}})))
	before := sensorsBySerial(t, s, g.ID)[1]
	require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{
		{GatewayID: g.ID, Serial: 1, Celsius: 23.5, At: t0.Add(time.Second)},
		{GatewayID: g.ID, Serial: 77, Celsius: 19, At: t0.Add(time.Second)},
	})))
	got := sensorsBySerial(t, s, g.ID)
	require.Len(t, got, 2, "an unknown serial is inserted")
	assert.Equal(t, 23.5, *got[1].LastTemperatureC)
	assert.True(t, t0.Add(time.Second).Equal(*got[1].LastTemperatureAt))
	assert.Equal(t, before.UpdatedAt, got[1].UpdatedAt, "a temperature does not move updated_at")
	assert.Equal(t, "Sensor 77", got[77].Name)
	assert.Equal(t, 19.0, *got[77].LastTemperatureC)
	// An older temperature never replaces a newer one.
	require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{{GatewayID: g.ID, Serial: 1, Celsius: 99, At: t0}})))
	assert.Equal(t, 23.5, *sensorsBySerial(t, s, g.ID)[1].LastTemperatureC)

	// A sighting (a serial named by another notification) inserts an
	// unknown serial without a temperature, and marks a known one seen
	// without touching its temperature.
	t2 := t0.Add(time.Minute)
	require.NoError(t, errOf(s.RecordTemperatures(ctx, []gatewayd.Temperature{
		{GatewayID: g.ID, Serial: 1, At: t2, Sighting: true},
		{GatewayID: g.ID, Serial: 88, At: t2, Sighting: true},
	})))
	got = sensorsBySerial(t, s, g.ID)
	require.Len(t, got, 3)
	assert.Equal(t, 23.5, *got[1].LastTemperatureC)
	assert.True(t, t0.Add(time.Second).Equal(*got[1].LastTemperatureAt))
	assert.True(t, t2.Equal(got[1].LastSeenAt))
	assert.Equal(t, "Sensor 88", got[88].Name)
	assert.Nil(t, got[88].LastTemperatureC)
	assert.Nil(t, got[88].LastTemperatureAt)
	assert.True(t, t2.Equal(got[88].FirstSeenAt))
}

func TestEquipmentAssignmentAndCascades(t *testing.T) {
	ctx := context.Background()
	s, _, fx, g := withGateway(t, "E1")
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{report(1, "A"), report(2, "B")}}})))
	sensors := sensorsBySerial(t, s, g.ID)

	kind := "pump"
	eq, err := s.CreateEquipment(ctx, store.NewEquipment{FactoryID: fx.factory.ID, Name: "P-101", Kind: &kind})
	require.NoError(t, err)
	assert.Equal(t, "pump", *eq.Kind)
	_, err = s.CreateEquipment(ctx, store.NewEquipment{FactoryID: uuid.New(), Name: "x"})
	assert.ErrorIs(t, err, gatewayd.ErrInvalidReference)
	otherFactory, err := s.CreateFactory(ctx, store.NewFactory{OrganizationID: fx.org.ID, Name: "Plant 2"})
	require.NoError(t, err)
	foreign, err := s.CreateEquipment(ctx, store.NewEquipment{FactoryID: otherFactory.ID, Name: "F-1"})
	require.NoError(t, err)

	up, err := s.UpdateSensor(ctx, sensors[1].ID, store.SensorPatch{EquipmentID: store.Some(&eq.ID)})
	require.NoError(t, err)
	assert.Equal(t, eq.ID, *up.EquipmentID)
	_, err = s.UpdateSensor(ctx, sensors[2].ID, store.SensorPatch{EquipmentID: store.Some(&foreign.ID)})
	assert.ErrorIs(t, err, gatewayd.ErrInvalidReference, "equipment of another factory")
	_, err = s.UpdateSensor(ctx, uuid.New(), store.SensorPatch{EquipmentID: store.Some(&eq.ID)})
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)

	every := 15 * time.Minute
	up, err = s.UpdateSensor(ctx, sensors[2].ID, store.SensorPatch{ReadingInterval: store.Some(&every)})
	require.NoError(t, err)
	assert.Equal(t, every, *up.ReadingInterval)
	up, err = s.UpdateSensor(ctx, sensors[2].ID, store.SensorPatch{ReadingInterval: store.Some[*time.Duration](nil)})
	require.NoError(t, err)
	assert.Nil(t, up.ReadingInterval)

	list, total, err := s.ListSensors(ctx, store.SensorFilter{EquipmentID: &eq.ID}, store.Page{Limit: 10})
	require.NoError(t, err)
	assert.Equal(t, 1, total)
	assert.Equal(t, sensors[1].ID, list[0].ID)
	_, total, err = s.ListSensors(ctx, store.SensorFilter{FactoryID: &fx.factory.ID}, store.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, total)

	// Deleting equipment unassigns its sensors.
	unassigned, err := s.DeleteEquipment(ctx, eq.ID)
	require.NoError(t, err)
	assert.Equal(t, []gatewayd.SensorRef{{ID: sensors[1].ID, GatewayID: g.ID, FactoryID: fx.factory.ID}}, unassigned,
		"the sensors it unassigned, for their events")
	got, err := s.GetSensor(ctx, sensors[1].ID)
	require.NoError(t, err)
	assert.Nil(t, got.EquipmentID)
	assert.ErrorIs(t, errOf(s.DeleteEquipment(ctx, eq.ID)), gatewayd.ErrNotFound)

	// Deleting the factory deletes its equipment, its gateways and their sensors.
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now()}})))
	eq2, err := s.CreateEquipment(ctx, store.NewEquipment{FactoryID: fx.factory.ID, Name: "P-102"})
	require.NoError(t, err)
	_, err = s.DeleteFactory(ctx, fx.factory.ID)
	require.NoError(t, err)
	_, err = s.GetEquipment(ctx, eq2.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.GetSensor(ctx, sensors[2].ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound)
	_, err = s.GetEquipment(ctx, foreign.ID)
	assert.NoError(t, err, "another factory's equipment stays")
}

// errOf drops a write's result, for tests that only check it succeeded.
func errOf[T any](_ T, err error) error { return err }

// A discovery merged while the gateway is being deleted leaves no live
// sensor under it. The merge is held mid-statement by another session's
// uncommitted row of the same serial, and the gateway is deleted then:
// the merge's statement had found the gateway live, and inserted live
// sensors under the deleted gateway once the other session let go.
func TestDiscoveryRacingADeleteLeavesNoLiveSensor(t *testing.T) {
	raceADelete(t, func(ctx context.Context, s *store.Store, gw uuid.UUID) error {
		_, err := s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: gw, At: time.Now(),
			Sensors: []gatewayd.SensorReport{report(99, "a"), report(100, "b")}}})
		return err
	})
}

// The same for a temperature of a serial nobody knew yet, which inserts
// its sensor.
func TestTemperatureRacingADeleteLeavesNoLiveSensor(t *testing.T) {
	raceADelete(t, func(ctx context.Context, s *store.Store, gw uuid.UUID) error {
		_, err := s.RecordTemperatures(ctx, []gatewayd.Temperature{{GatewayID: gw, Serial: 99, Celsius: 21, At: time.Now()}})
		return err
	})
}

// raceADelete runs write (a sensor write of serial 99 under a gateway)
// held mid-statement while the gateway is deleted, and checks that no
// live sensor is left under the deleted gateway.
func raceADelete(t *testing.T, write func(ctx context.Context, s *store.Store, gw uuid.UUID) error) {
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "doomed")

	holder, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(ctx) }()
	_, err = holder.Exec(ctx, `INSERT INTO sensors (gateway_id, serial, name) VALUES ($1, 99, 'held')`, g.ID)
	require.NoError(t, err)

	merged := make(chan error, 1)
	go func() { merged <- write(ctx, s, g.ID) }()
	waiting := func(sqlPrefix string) func() bool {
		return func() bool {
			var n int
			err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`, "%"+sqlPrefix+"%").Scan(&n)
			return err == nil && n > 0
		}
	}
	require.Eventually(t, waiting("INSERT INTO sensors AS s"), 10*time.Second, 5*time.Millisecond, "the write waits for the held row")

	deleted := make(chan error, 1)
	go func() { deleted <- errOf(s.DeleteGateway(ctx, g.ID)) }()
	// The deletion either waits for the merge (the fix) or commits at
	// once (the defect); the held row is let go in both cases once
	// either is seen.
	require.Eventually(t, func() bool {
		if waiting("UPDATE gateways SET deleted_at")() {
			return true
		}
		select {
		case err := <-deleted:
			deleted <- err
			return true
		default:
			return false
		}
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, holder.Rollback(ctx))
	require.NoError(t, <-merged)
	require.NoError(t, <-deleted)

	var live int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM sensors WHERE gateway_id = $1 AND deleted_at IS NULL`, g.ID).Scan(&live))
	assert.Zero(t, live, "no live sensor under a deleted gateway")
}

// API.md §7: known serials are updated, "the name unless one was set
// through the API". A gateway that renames a sensor to text that happens
// to equal gatewayd's placeholder ("Sensor <serial>", e.g. back to a
// firmware default) is a rename like any other; only an entry without a
// name should keep the stored one.
func TestDiscoveryTakesARenameToThePlaceholderText(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "P1")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{
		{GatewayID: g.ID, At: t0, Sensors: []gatewayd.SensorReport{report(5, "Press")}}})))
	require.Equal(t, "Press", sensorsBySerial(t, s, g.ID)[5].Name)

	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{
		{GatewayID: g.ID, At: t0.Add(time.Minute), Sensors: []gatewayd.SensorReport{report(5, "Sensor 5")}}})))
	assert.Equal(t, "Sensor 5", sensorsBySerial(t, s, g.ID)[5].Name,
		"the gateway renamed the sensor and no name was set through the API")
}

// A discovery answer older than the one a sensor's reported fields came
// from leaves them: the writer merged a gateway's older answer after the
// API's discover had merged a newer one, and put a read rate of 100 back
// over 200 (a flake of TestMergeRulesThroughDiscover in CI). Its last
// seen time never moves back either, and it disconnects nothing the newer
// answer listed.
func TestAnOlderDiscoveryLeavesANewersFields(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "OLD")
	t1 := time.Now().UTC().Truncate(time.Millisecond)
	t2 := t1.Add(time.Second)
	newer := report(1, "Newer")
	rate := 200.0
	newer.ReadRateHz = &rate
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t2,
		Sensors: []gatewayd.SensorReport{newer, report(2, "Two")}}})))
	older := report(1, "Older")
	oldRate := 100.0
	older.ReadRateHz, older.Connected = &oldRate, false
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1,
		Sensors: []gatewayd.SensorReport{older}}})))
	got := sensorsBySerial(t, s, g.ID)
	assert.Equal(t, "Newer", got[1].Name)
	assert.Equal(t, 200.0, *got[1].ReadRateHz)
	assert.True(t, got[1].Connected)
	assert.True(t, t2.Equal(got[1].LastSeenAt))
	assert.True(t, got[2].Connected, "listed by the newer answer, left out by the older")

	// A newer answer still applies.
	third := report(1, "Third")
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t2.Add(time.Second),
		Sensors: []gatewayd.SensorReport{third}}})))
	got = sensorsBySerial(t, s, g.ID)
	assert.Equal(t, "Third", got[1].Name)
	assert.False(t, got[2].Connected)
}

// README: "An answer older than the one a sensor's fields came from …
// leaves them", and connected is one of them. A newer answer that left a
// known sensor out marked it disconnected; an older answer merged after
// it (the writer's) that still listed the sensor connected it again, and
// stored a serial only it listed as connected, though the newest list
// left both out. (Found by an audit, helper 1, whose test this is.)
func TestAnOlderAnswerDoesNotUndoANewersDisconnect(t *testing.T) {
	ctx := context.Background()
	s, _, _, g := withGateway(t, "AUDDISC")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)

	// Serials 1 and 2 known and connected, from an answer at t0.
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{report(1, "One"), report(2, "Two")}}})))

	// The newer answer (t2, the API's discover) lists 1 only: 2 is gone.
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t2,
		Sensors: []gatewayd.SensorReport{report(1, "One")}}})))
	require.False(t, sensorsBySerial(t, s, g.ID)[2].Connected, "the newer answer left serial 2 out")

	// The older answer (t1, the writer's) lands after it: it still listed
	// 2, and 3 (new).
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1,
		Sensors: []gatewayd.SensorReport{report(1, "One"), report(2, "Two"), report(3, "Three")}}})))
	got := sensorsBySerial(t, s, g.ID)
	assert.True(t, got[1].Connected)
	assert.False(t, got[2].Connected,
		"an answer older than the one that disconnected serial 2 connected it again (last_seen_at %v, newest list %v)",
		got[2].LastSeenAt, t2)
	require.Contains(t, got, int64(3), "a serial the older answer listed is stored")
	assert.False(t, got[3].Connected,
		"serial 3 is only in an answer older than the newest list, which left it out, yet it is stored connected")

	// An older answer that the newest list left nothing of: a sensor
	// disconnected by an answer that listed none (t3) stays so too.
	t3, t4 := t2.Add(time.Second), t2.Add(2*time.Second)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t4}})))
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t3,
		Sensors: []gatewayd.SensorReport{report(1, "One")}}})))
	assert.False(t, sensorsBySerial(t, s, g.ID)[1].Connected, "the newest answer (t4) listed no sensor")
}

// The same, where the newest answer leaves no sensor row to show it: it
// lists nothing, and every sensor of the gateway was disconnected
// already, or the gateway has none. Measured from the sensors' stamps
// (the fix above), an older answer merged after it still connected what
// it listed; sensor_lists keeps the newest answer's time. (Found by an
// audit, helper 10, whose tests these are.)
func TestAnOlderAnswerDoesNotUndoANewerEmptyList(t *testing.T) {
	ctx := context.Background()
	t.Run("all disconnected", func(t *testing.T) {
		s, _, _, g := withGateway(t, "AUD10A")
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second)
		// Serials 1 and 2 known at t0; the answer at t1 lists none: both
		// disconnected (every sensor of the gateway unplugged).
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
			Sensors: []gatewayd.SensorReport{report(1, "One"), report(2, "Two")}}})))
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1}})))
		require.False(t, sensorsBySerial(t, s, g.ID)[2].Connected)
		// The newest answer (t3, the API's discover) lists none either; an
		// older answer (t2, the writer's) merged after it lists 2 again.
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t3}})))
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t2,
			Sensors: []gatewayd.SensorReport{report(2, "Two")}}})))
		got := sensorsBySerial(t, s, g.ID)
		assert.False(t, got[1].Connected)
		assert.False(t, got[2].Connected,
			"the newest answer (t3) left serial 2 out; an older one (t2) merged after it connected it again")
		// A newer answer still connects it.
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t3.Add(time.Second),
			Sensors: []gatewayd.SensorReport{report(2, "Two")}}})))
		assert.True(t, sensorsBySerial(t, s, g.ID)[2].Connected)
	})
	t.Run("no sensors", func(t *testing.T) {
		s, _, _, g := withGateway(t, "AUD10B")
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
		// The newest answer (t2): the gateway lists no sensor; an older
		// answer (t1) merged after it lists serial 7.
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t2}})))
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t1,
			Sensors: []gatewayd.SensorReport{report(7, "Seven")}}})))
		got := sensorsBySerial(t, s, g.ID)
		require.Contains(t, got, int64(7), "a serial the older answer listed is stored")
		assert.False(t, got[7].Connected,
			"serial 7 is only in an answer older than the newest list, which listed nothing, yet it is stored connected")
	})
}
