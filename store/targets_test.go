package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

// API.md §8: a sensor with a reading_interval is read on that schedule by
// its gateway's actor. Every way the runtime learns a gateway (Targets at
// start and on reconciliation, Target, SetDesiredState, UpdateGateway)
// carries its sensors' schedules, and only those with an interval.
func TestEveryTargetCarriesItsSchedules(t *testing.T) {
	ctx := context.Background()
	s, _, fx, g := withGateway(t, "SCHED")
	other, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "OTHER"))
	require.NoError(t, err)
	for _, gw := range []uuid.UUID{g.ID, other.ID} {
		require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: gw, At: time.Now(),
			Sensors: []gatewayd.SensorReport{report(1, "A"), report(2, "B"), report(3, "C")}}})))
	}
	sensors := sensorsBySerial(t, s, g.ID)
	every, often := 15*time.Minute, 2*time.Minute
	_, err = s.UpdateSensor(ctx, sensors[1].ID, store.SensorPatch{ReadingInterval: store.Some(&every)})
	require.NoError(t, err)
	_, err = s.UpdateSensor(ctx, sensors[3].ID, store.SensorPatch{ReadingInterval: store.Some(&often)})
	require.NoError(t, err)
	want := []gatewayd.Schedule{{SensorID: sensors[1].ID, Serial: 1, Interval: every}, {SensorID: sensors[3].ID, Serial: 3, Interval: often}}

	all, err := s.Targets(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	for _, tg := range all {
		if tg.ID == g.ID {
			assert.Equal(t, want, tg.Schedules, "Targets")
		} else {
			assert.Empty(t, tg.Schedules, "Targets: the other gateway has none")
		}
	}
	one, err := s.Target(ctx, g.ID)
	require.NoError(t, err)
	assert.Equal(t, want, one.Schedules, "Target")
	desired, _, err := s.SetDesiredState(ctx, g.ID, gatewayd.DesiredDisconnected)
	require.NoError(t, err)
	assert.Equal(t, want, desired.Schedules, "SetDesiredState")
	up, err := s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Name: store.Some("renamed")})
	require.NoError(t, err)
	assert.Equal(t, want, up.Target.Schedules, "UpdateGateway")
}

// A gateway whose stored password no configured key opens is flagged
// Unreadable in the target an update returns, unless the update sets a
// new password, which clears the flag.
func TestUpdateGatewayTargetSaysWhetherThePasswordIsReadable(t *testing.T) {
	ctx := context.Background()
	s, pool, _, g := withGateway(t, "UNREADABLE")
	_, err := pool.Exec(ctx, `UPDATE gateways SET password_encrypted = $2 WHERE id = $1`, g.ID,
		sealV1(t, []byte("a key nobody configured, 32 byte"), "gone"))
	require.NoError(t, err)

	up, err := s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Name: store.Some("renamed")})
	require.NoError(t, err)
	assert.True(t, up.Target.Unreadable, "still unreadable")
	assert.False(t, up.Reconnect)

	up, err = s.UpdateGateway(ctx, g.ID, store.GatewayPatch{Password: store.Some("fresh")})
	require.NoError(t, err)
	assert.False(t, up.Target.Unreadable, "a new password is readable")
	assert.Equal(t, "fresh", up.Target.Password)
	assert.True(t, up.Reconnect)
	tg, err := s.Target(ctx, g.ID)
	require.NoError(t, err)
	assert.False(t, tg.Unreadable)
	assert.Equal(t, "fresh", tg.Password)
}

// RecordTemperatures returns every sensor it wrote, known ones too, for
// their sensor.updated events (a new temperature is news).
func TestTemperatureOfAKnownSensorIsReported(t *testing.T) {
	ctx := context.Background()
	s, _, fx, g := withGateway(t, "TEMP")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, errOf(s.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{report(1, "A")}}})))
	known := sensorsBySerial(t, s, g.ID)[1]
	refs, err := s.RecordTemperatures(ctx, []gatewayd.Temperature{{GatewayID: g.ID, Serial: 1, Celsius: 21, At: t0.Add(time.Second)}})
	require.NoError(t, err)
	assert.Equal(t, []gatewayd.SensorRef{{ID: known.ID, GatewayID: g.ID, FactoryID: fx.factory.ID}}, refs)
}

// FailAbandonedReadings returns, for each reading.failed event, the
// reading's gateway and that gateway's factory, so that a stream filtered
// by factory_id sees it (API.md §9).
func TestAbandonedReadingsNameTheirFactory(t *testing.T) {
	ctx := context.Background()
	s, pool, g, sensor := readingFixture(t)
	r, _, err := s.CreateReading(ctx, uuid.New(), sensor.ID, gatewayd.TriggerManual)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE readings SET requested_at = now() - interval '2 hours' WHERE id = $1`, r.ID)
	require.NoError(t, err)
	refs, err := s.FailAbandonedReadings(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, refs, 1)
	assert.Equal(t, r.ID, refs[0].ID)
	assert.Equal(t, g.ID, refs[0].GatewayID)
	assert.Equal(t, g.FactoryID, refs[0].FactoryID)
}

// A refused login is kept for the next start (MarkAuthFailures,
// AuthFailures) and forgotten by what leaves AUTH_FAILED (API.md §4): new
// credentials, a connect request, desired_state CONNECTED; a rename or a
// disconnect keeps it, and a deleted gateway has none.
func TestAuthFailuresAreKeptUntilCredentialsChangeOrAConnect(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	fx := setup(t, s)
	refused := func() map[uuid.UUID]string {
		t.Helper()
		m, err := s.AuthFailures(ctx)
		require.NoError(t, err)
		return m
	}
	var gs []uuid.UUID
	for _, name := range []string{"A", "B", "C", "D", "E", "F"} {
		g, err := s.CreateGateway(ctx, newGateway(fx.factory.ID, "AUTH-"+name))
		require.NoError(t, err)
		gs = append(gs, g.ID)
	}
	why, none := "Invalid email or password", ""
	all := map[uuid.UUID]*string{}
	for i, id := range gs {
		all[id] = &why
		if i == 1 {
			all[id] = &none
		}
	}
	require.NoError(t, s.MarkAuthFailures(ctx, all))
	want := map[uuid.UUID]string{gs[0]: why, gs[1]: "", gs[2]: why, gs[3]: why, gs[4]: why, gs[5]: why}
	assert.Equal(t, want, refused())

	require.NoError(t, s.MarkAuthFailures(ctx, map[uuid.UUID]*string{gs[0]: nil}))
	delete(want, gs[0])
	_, err := s.UpdateGateway(ctx, gs[1], store.GatewayPatch{Name: store.Some("renamed")})
	require.NoError(t, err)
	_, _, err = s.SetDesiredState(ctx, gs[1], gatewayd.DesiredDisconnected)
	require.NoError(t, err)
	assert.Equal(t, want, refused(), "cleared by its writer; a rename and a disconnect keep it")

	_, err = s.UpdateGateway(ctx, gs[2], store.GatewayPatch{Password: store.Some("another")})
	require.NoError(t, err)
	_, _, err = s.SetDesiredState(ctx, gs[3], gatewayd.DesiredConnected)
	require.NoError(t, err)
	// A PUT repeating the stored CONNECTED is no connect and keeps it
	// (as the runtime does); one that changes desired_state to CONNECTED
	// is a connect.
	_, err = s.UpdateGateway(ctx, gs[4], store.GatewayPatch{DesiredState: store.Some(gatewayd.DesiredConnected)})
	require.NoError(t, err)
	assert.Contains(t, refused(), gs[4], "a PUT of the stored CONNECTED keeps it")
	_, _, err = s.SetDesiredState(ctx, gs[4], gatewayd.DesiredDisconnected)
	require.NoError(t, err)
	_, err = s.UpdateGateway(ctx, gs[4], store.GatewayPatch{DesiredState: store.Some(gatewayd.DesiredConnected)})
	require.NoError(t, err)
	_, err = s.DeleteGateway(ctx, gs[5])
	require.NoError(t, err)
	assert.Equal(t, map[uuid.UUID]string{gs[1]: ""}, refused(), "new credentials, a connect, a change to CONNECTED and a delete forget it")
	require.NoError(t, s.MarkAuthFailures(ctx, map[uuid.UUID]*string{gs[5]: &why}))
	assert.NotContains(t, refused(), gs[5], "a deleted gateway is left alone")
}
