package actors_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// writerStore is a database with a gateway (never dialed: no runtime
// runs it) and its sensor of serial 7, for a writer to write to.
func writerStore(t *testing.T) (*store.Store, gatewayd.Gateway, gatewayd.Sensor) {
	t.Helper()
	t.Parallel()
	ctx := context.Background()
	pool, _ := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
	require.NoError(t, err)
	st := store.New(pool, sealer)
	org, err := st.CreateOrganization(ctx, "Org", nil)
	require.NoError(t, err)
	f, err := st.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "F"})
	require.NoError(t, err)
	g, err := st.CreateGateway(ctx, store.NewGateway{FactoryID: f.ID, GatewayID: "W1", Name: "W1", URL: "ws://127.0.0.1:9/gw/w1",
		Email: "ops@example.com", Password: "pw-w1", DesiredState: gatewayd.DesiredDisconnected})
	require.NoError(t, err)
	_, err = st.MergeDiscoveries(ctx, []gatewayd.Discovery{{GatewayID: g.ID, At: time.Now(),
		Sensors: []gatewayd.SensorReport{{Serial: 7, Name: "Seven", Connected: true}}}})
	require.NoError(t, err)
	sensors, err := st.GatewaySensors(ctx, g.ID)
	require.NoError(t, err)
	require.Len(t, sensors, 1)
	return st, g, sensors[0]
}

// scheduledReading is a scheduled reading's update in status, at at.
func scheduledReading(g gatewayd.Gateway, s gatewayd.Sensor, id uuid.UUID, status gatewayd.ReadingStatus, at time.Time) gatewayd.ReadingUpdate {
	r := gatewayd.Reading{ID: id, SensorID: s.ID, GatewayID: g.ID, Trigger: gatewayd.TriggerScheduled, Status: status, RequestedAt: at}
	switch status {
	case gatewayd.ReadingRunning:
		r.StartedAt = &at
	case gatewayd.ReadingComplete:
		n := 3
		r.StartedAt, r.CompletedAt, r.Samples, r.Summary = &at, &at, &n, []byte(`{"x":{"samples":3}}`)
	}
	return gatewayd.ReadingUpdate{Reading: r, Serial: s.Serial}
}

// sensorsOf returns a gateway's sensors as stored, by serial.
func sensorsOf(t *testing.T, st *store.Store, gw uuid.UUID) map[int64]gatewayd.Sensor {
	t.Helper()
	list, err := st.GatewaySensors(context.Background(), gw)
	require.NoError(t, err)
	out := map[int64]gatewayd.Sensor{}
	for _, s := range list {
		out[s.Serial] = s
	}
	return out
}

// Updates of one row handed over out of order before a flush: what is
// written is the newest (last_seen_at, a discovery and a temperature by
// their time) or the furthest along (a reading's state: a later update
// never moves it back), not the last handed over.
func TestWriterWritesTheNewestUpdateOfEachRow(t *testing.T) {
	st, g, s := writerStore(t)
	ctx := context.Background()
	w := actors.NewWriter(st, time.Hour, time.Hour, time.Hour) // flushed by the test only
	t.Cleanup(w.Close)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second)
	names := map[time.Time]string{t1: "first", t2: "late", t3: "newest"}
	temps := map[time.Time]float64{t1: 10, t2: 20, t3: 30}
	for _, at := range []time.Time{t1, t3, t2} { // the newest in the middle
		w.Mark(g.ID, at)
		w.Discovered(gatewayd.Discovery{GatewayID: g.ID, At: at,
			Sensors: []gatewayd.SensorReport{{Serial: 7, Name: "Seven", Connected: true}, {Serial: 5, Name: names[at], Connected: true}}})
		w.Temperature(gatewayd.Temperature{GatewayID: g.ID, Serial: 6, Celsius: temps[at], At: at})
	}
	orders := map[string][]gatewayd.ReadingStatus{
		"a late RUNNING after COMPLETE":    {gatewayd.ReadingQueued, gatewayd.ReadingComplete, gatewayd.ReadingRunning},
		"a late QUEUED after RUNNING":      {gatewayd.ReadingRunning, gatewayd.ReadingQueued},
		"RUNNING after QUEUED moves it on": {gatewayd.ReadingQueued, gatewayd.ReadingRunning},
	}
	want := map[string]gatewayd.ReadingStatus{"a late RUNNING after COMPLETE": gatewayd.ReadingComplete,
		"a late QUEUED after RUNNING": gatewayd.ReadingRunning, "RUNNING after QUEUED moves it on": gatewayd.ReadingRunning}
	ids := map[string]uuid.UUID{}
	for name, statuses := range orders {
		ids[name] = uuid.New()
		for _, st := range statuses {
			w.Reading(scheduledReading(g, s, ids[name], st, t0))
		}
	}
	w.FlushReadings()
	w.FlushData()
	w.FlushSeen()

	got, err := st.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	if assert.NotNil(t, got.LastSeenAt, "last_seen_at written") {
		assert.True(t, t3.Equal(*got.LastSeenAt), "last_seen_at is the newest mark, %s: %s", t3, got.LastSeenAt)
	}
	sensors := sensorsOf(t, st, g.ID)
	if assert.Contains(t, sensors, int64(5), "the discovery written") {
		assert.Equal(t, "newest", sensors[5].Name, "the newest discovery is written")
		assert.True(t, t3.Equal(sensors[5].LastSeenAt), "seen at the newest discovery: %s", sensors[5].LastSeenAt)
	}
	if assert.Contains(t, sensors, int64(6), "the temperature written") && assert.NotNil(t, sensors[6].LastTemperatureC) {
		assert.Equal(t, 30.0, *sensors[6].LastTemperatureC, "the newest temperature is written")
	}
	for name, id := range ids {
		r, err := st.GetReading(ctx, id)
		if assert.NoError(t, err, name) {
			assert.Equal(t, want[name], r.Status, name)
		}
	}
}

// outage is the database behind a connection that fails while down:
// every write is refused (ErrUnavailable, as a database that cannot be
// reached) and counted, and none reaches PostgreSQL.
type outage struct {
	*store.Store
	down    atomic.Bool
	mu      sync.Mutex
	refused map[string]int
}

func (o *outage) refuse(what string) error {
	if !o.down.Load() {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused[what]++
	return fmt.Errorf("%s: %w: injected outage", what, gatewayd.ErrUnavailable)
}

// refusals returns how many writes of each kind were refused.
func (o *outage) refusals() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for k, v := range o.refused {
		out[k] = v
	}
	return out
}

func (o *outage) MarkSeen(ctx context.Context, seen map[uuid.UUID]time.Time) error {
	if err := o.refuse("seen"); err != nil {
		return err
	}
	return o.Store.MarkSeen(ctx, seen)
}

func (o *outage) MergeDiscoveries(ctx context.Context, ds []gatewayd.Discovery) ([]gatewayd.SensorRef, error) {
	if err := o.refuse("discoveries"); err != nil {
		return nil, err
	}
	return o.Store.MergeDiscoveries(ctx, ds)
}

func (o *outage) RecordTemperatures(ctx context.Context, ts []gatewayd.Temperature) ([]gatewayd.SensorRef, error) {
	if err := o.refuse("temperatures"); err != nil {
		return nil, err
	}
	return o.Store.RecordTemperatures(ctx, ts)
}

func (o *outage) SaveReadings(ctx context.Context, us []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	if err := o.refuse("readings"); err != nil {
		return nil, err
	}
	return o.Store.SaveReadings(ctx, us)
}

// A write the database fails is kept and tried again at the writer's
// next interval, for as long as the database fails, and lands once it
// answers; older updates handed over meanwhile do not replace what is
// kept (the newest value per row, as before the failure).
func TestWriterRetriesWhatTheDatabaseFailed(t *testing.T) {
	st, g, s := writerStore(t)
	ctx := context.Background()
	src := &outage{Store: st, refused: map[string]int{}}
	src.down.Store(true)
	w := actors.NewWriter(src, 10*time.Millisecond, 40*time.Millisecond, 10*time.Millisecond)
	t.Cleanup(w.Close)
	kinds := []string{"seen", "discoveries", "temperatures", "readings"}
	refusedAtLeast := func(n map[string]int) func() bool {
		return func() bool {
			got := src.refusals()
			for _, k := range kinds {
				if got[k] < n[k] {
					return false
				}
			}
			return true
		}
	}

	t0 := time.Now().UTC().Truncate(time.Millisecond)
	id := uuid.New()
	w.Mark(g.ID, t0)
	w.Discovered(gatewayd.Discovery{GatewayID: g.ID, At: t0,
		Sensors: []gatewayd.SensorReport{{Serial: 7, Name: "Seven", Connected: true}, {Serial: 5, Name: "Found", Connected: true}}})
	w.Temperature(gatewayd.Temperature{GatewayID: g.ID, Serial: 6, Celsius: 25.5, At: t0})
	w.Reading(scheduledReading(g, s, id, gatewayd.ReadingComplete, t0))
	eventually(t, refusedAtLeast(map[string]int{"seen": 2, "discoveries": 2, "temperatures": 2, "readings": 2}), 10*time.Second,
		"each write is tried again after it failed")

	// Older updates while the database is down: they meet the kept
	// values (pending again, or being tried) and lose to them.
	before := time.Minute
	w.Mark(g.ID, t0.Add(-before))
	w.Discovered(gatewayd.Discovery{GatewayID: g.ID, At: t0.Add(-before),
		Sensors: []gatewayd.SensorReport{{Serial: 7, Name: "Seven", Connected: true}, {Serial: 5, Name: "Stale", Connected: true}}})
	w.Temperature(gatewayd.Temperature{GatewayID: g.ID, Serial: 6, Celsius: -1, At: t0.Add(-before)})
	w.Reading(scheduledReading(g, s, id, gatewayd.ReadingRunning, t0))
	next := src.refusals()
	for _, k := range kinds {
		next[k] += 2
	}
	eventually(t, refusedAtLeast(next), 10*time.Second, "still tried while down")

	got, err := st.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	require.Nil(t, got.LastSeenAt, "nothing reached the database while it was down")
	require.NotContains(t, sensorsOf(t, st, g.ID), int64(5))
	_, err = st.GetReading(ctx, id)
	require.ErrorIs(t, err, gatewayd.ErrNotFound)

	src.down.Store(false)
	eventually(t, func() bool { // asked off the test's goroutine: no require here
		gw, err := st.GetGateway(ctx, g.ID)
		if err != nil || gw.LastSeenAt == nil {
			return false
		}
		if _, err := st.GetReading(ctx, id); err != nil {
			return false
		}
		var found, warm bool
		list, err := st.GatewaySensors(ctx, g.ID)
		for _, x := range list {
			found = found || x.Serial == 5
			warm = warm || (x.Serial == 6 && x.LastTemperatureC != nil)
		}
		return err == nil && found && warm
	}, 10*time.Second, "what was kept lands once the database answers")
	got, err = st.GetGateway(ctx, g.ID)
	require.NoError(t, err)
	assert.True(t, t0.Equal(*got.LastSeenAt), "last_seen_at is the kept mark, %s: %s", t0, got.LastSeenAt)
	sensors := sensorsOf(t, st, g.ID)
	assert.Equal(t, "Found", sensors[5].Name, "the kept discovery")
	assert.Equal(t, 25.5, *sensors[6].LastTemperatureC, "the kept temperature")
	r, err := st.GetReading(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, gatewayd.ReadingComplete, r.Status, "the kept reading state")
}
