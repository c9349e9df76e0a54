package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
)

// fixedSource is a fake store for supervisor logic that needs no database.
type fixedSource struct{ targets []gatewayd.Target }

func (f fixedSource) Targets(context.Context) ([]gatewayd.Target, error) {
	return f.targets, nil
}
func (fixedSource) MarkSeen(context.Context, map[uuid.UUID]time.Time) error { return nil }
func (fixedSource) MergeDiscoveries(context.Context, []gatewayd.Discovery) ([]gatewayd.SensorRef, error) {
	return nil, nil
}
func (fixedSource) RecordTemperatures(context.Context, []gatewayd.Temperature) ([]gatewayd.SensorRef, error) {
	return nil, nil
}
func (fixedSource) SaveReadings(context.Context, []gatewayd.ReadingUpdate) ([]gatewayd.ReadingRef, error) {
	return nil, nil
}
func (fixedSource) SensorReadRate(context.Context, uuid.UUID, int64) (float64, error) { return 0, nil }
func (fixedSource) MarkAuthFailures(context.Context, map[uuid.UUID]*string) error     { return nil }
func (fixedSource) AuthFailures(context.Context) (map[uuid.UUID]string, error)        { return nil, nil }

// A store read made before an API removal must not resurrect the gateway.
func TestStaleReadDoesNotResurrectARemovedGateway(t *testing.T) {
	t.Parallel()
	conn := gatewayd.Target{ID: uuid.New(), FactoryID: uuid.New(), Desired: gatewayd.DesiredConnected,
		Credentials: gatewayd.Credentials{URL: "ws://127.0.0.1:9/none", Email: "e", Password: "p"}}
	rt := startQuietRuntime(t, fixedSource{targets: []gatewayd.Target{conn}})
	_, err := rt.Status(context.Background(), conn.ID)
	require.NoError(t, err)

	staleRead := time.Now()
	rt.GatewaysRemoved([]uuid.UUID{conn.ID}, nil)
	rt.d.root.Send(rt.supervisor, &converge{targets: []gatewayd.Target{conn}, readAt: staleRead})
	_, err = rt.Status(context.Background(), conn.ID)
	require.True(t, errors.Is(err, gatewayd.ErrNotFound), "resurrected: %v", err)

	// Nor does a request that wrote before the delete committed and told
	// the runtime after it (a connect or a PUT racing the DELETE).
	rt.GatewayStarted(conn)
	_, err = rt.Status(context.Background(), conn.ID)
	require.True(t, errors.Is(err, gatewayd.ErrNotFound), "resurrected by a late upsert: %v", err)

	// Nor a gateway the runtime had not heard of when it was removed: a
	// factory's deletion names a gateway whose create has not told the
	// runtime yet.
	unheard := conn
	unheard.ID = uuid.New()
	rt.GatewaysRemoved([]uuid.UUID{unheard.ID}, nil)
	rt.GatewayStarted(unheard)
	_, err = rt.Status(context.Background(), unheard.ID)
	require.True(t, errors.Is(err, gatewayd.ErrNotFound), "started after its removal: %v", err)

	// A read made after the removal that still has it (another process
	// restored it) is obeyed.
	rt.d.root.Send(rt.supervisor, &converge{targets: []gatewayd.Target{conn}, readAt: time.Now()})
	require.Eventually(t, func() bool {
		_, err := rt.Status(context.Background(), conn.ID)
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
}

// A disconnect, and new connection settings, start the failures over:
// reconnect_attempts goes back to 0, and the next failure waits the
// first backoff, not the grown one.
func TestDisconnectAndNewSettingsStartTheBackoffOver(t *testing.T) {
	t.Parallel()
	states := make(chan gatewayd.Status, 256)
	cfg := Config{ConnectTimeout: time.Second, AuthTimeout: time.Second, CommandTimeout: time.Second,
		BackoffInitial: 200 * time.Millisecond, BackoffMax: 2 * time.Second, BackoffMultiplier: 2,
		PingInterval: time.Minute, PongTimeout: time.Minute, RestartLimit: 3, RestartWindow: time.Minute, ReconcileInterval: time.Hour,
		Observer: stateObserver{states}}
	rt := Start(cfg, fixedSource{}, zerolog.Nop())
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	// After the first store read, which would remove a gateway it lacks.
	require.Eventually(t, rt.Ready, 10*time.Second, 5*time.Millisecond)
	refused := gatewayd.Credentials{URL: "ws://127.0.0.1:9/none", Email: "e@example.com", Password: "p"} // nothing listens
	target := gatewayd.Target{ID: uuid.New(), FactoryID: uuid.New(), GatewayID: "refused", Name: "r",
		Desired: gatewayd.DesiredConnected, Credentials: refused}
	rt.GatewayStarted(target)
	ctx := context.Background()
	status := func() gatewayd.Status {
		st, err := rt.Status(ctx, target.ID)
		require.NoError(t, err)
		return st
	}
	// entered waits for the gateway's next entry into BACKOFF after
	// attempts failures and returns its status then, as the actor told
	// it: a poll of the status could miss a 200 ms backoff on a loaded box
	// and see the next one.
	entered := func(attempts int, what string) gatewayd.Status {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case st := <-states:
				if st.ID == target.ID && st.State == gatewayd.StateBackoff && st.ReconnectAttempts == attempts {
					return st
				}
			case <-timeout:
				t.Fatalf("%s: no BACKOFF after %d failures within 20 s", what, attempts)
			}
		}
	}
	// firstRetry waits for the first BACKOFF of a fresh start (a count
	// that did not start over never gets back to 1) and checks how long
	// it waits.
	firstRetry := func(what string) {
		t.Helper()
		st := entered(1, what)
		require.NotNil(t, st.NextRetryAt, what)
		assert.LessOrEqual(t, st.NextRetryAt.Sub(st.Since), 300*time.Millisecond+50*time.Millisecond,
			"%s: the first backoff (200 ms, jitter up to half), not a grown one", what)
	}
	grown := func() {
		t.Helper()
		entered(3, "three failures: the backoff grew (to 800 ms)")
	}

	grown()
	_, err := rt.Disconnect(ctx, target.ID)
	require.NoError(t, err)
	assert.Zero(t, status().ReconnectAttempts, "a disconnect clears the count")
	_, err = rt.Connect(ctx, target.ID)
	require.NoError(t, err)
	firstRetry("after a disconnect")

	grown()
	target.Credentials.Password = "new"
	rt.GatewayUpdated(target)
	firstRetry("after new credentials")
}

// stateObserver passes every change of a gateway's state to a channel
// (dropped when full: the tests read as they go).
type stateObserver struct{ ch chan<- gatewayd.Status }

func (o stateObserver) GatewayState(_ gatewayd.State, st gatewayd.Status) {
	select {
	case o.ch <- st:
	default:
	}
}
func (stateObserver) Dialed(error, time.Duration)         {}
func (stateObserver) LoginAnswered(string)                {}
func (stateObserver) ActorRestarted()                     {}
func (stateObserver) FloodCutOff()                        {}
func (stateObserver) SensorsChanged([]gatewayd.SensorRef) {}
func (stateObserver) ReadingsDone([]gatewayd.ReadingRef)  {}

// Reconciliation never undoes what the API did after its read was made,
// and a removal outlives the first read that lacks the gateway.
func TestConvergeKeepsWhatCameAfterItsRead(t *testing.T) {
	t.Parallel()
	base := gatewayd.Target{FactoryID: uuid.New(), Desired: gatewayd.DesiredDisconnected,
		Credentials: gatewayd.Credentials{URL: "ws://127.0.0.1:9/none", Email: "e", Password: "p"}}
	changed, added, removed := base, base, base
	changed.ID, added.ID, removed.ID = uuid.New(), uuid.New(), uuid.New()
	rt := startQuietRuntime(t, fixedSource{targets: []gatewayd.Target{changed, removed}})
	ctx := context.Background()
	converge := func(readAt time.Time, targets ...gatewayd.Target) {
		rt.d.root.Send(rt.supervisor, &converge{targets: targets, readAt: readAt})
	}

	staleRead := time.Now()
	renamed := changed
	renamed.Name = "renamed after the read"
	rt.GatewayUpdated(renamed)
	rt.GatewayStarted(added)
	converge(staleRead, changed, removed) // made before both: has the old name, lacks the new gateway
	st, err := rt.Status(ctx, changed.ID)
	require.NoError(t, err)
	assert.Equal(t, "renamed after the read", st.Name, "a read older than the change does not undo it")
	_, err = rt.Status(ctx, added.ID)
	assert.NoError(t, err, "a read older than the gateway does not remove it")

	rt.GatewaysRemoved([]uuid.UUID{removed.ID}, nil)
	_, err = rt.Status(ctx, removed.ID) // after the removal, in the same mailbox
	require.ErrorIs(t, err, gatewayd.ErrNotFound)
	converge(time.Now(), changed, added) // newer than the removal, and lacks it
	rt.GatewayStarted(removed)           // a request that wrote before the delete
	_, err = rt.Status(ctx, removed.ID)
	assert.ErrorIs(t, err, gatewayd.ErrNotFound, "the removal outlives the first read that lacks it (tombstoneLife)")
}
