package actors_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/config"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

var tmpl *testdb.Template

func TestMain(m *testing.M) { testdb.Exit(testdb.Run(m, &tmpl)) }

func fastConfig() config.Gateway {
	return config.Gateway{
		ConnectTimeout: 500 * time.Millisecond, AuthTimeout: 300 * time.Millisecond, CommandTimeout: time.Second,
		BackoffInitial: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BackoffMultiplier: 2,
		PingInterval: 100 * time.Millisecond, PongTimeout: 150 * time.Millisecond, DialConcurrency: 64,
		RestartLimit: 3, RestartWindow: 10 * time.Second,
	}
}

type harness struct {
	t       testing.TB
	st      *store.Store
	pool    *pgxpool.Pool
	sim     *ctctest.Server
	rt      *actors.Runtime
	factory uuid.UUID
	logs    *testutil.SyncBuffer
	cfg     config.Gateway
}

func newHarness(t *testing.T, cfg config.Gateway) *harness { return newHarnessTB(t, cfg) }

func newBenchHarness(b *testing.B) *harness { return newHarnessTB(b, fastConfig()) }

func newHarnessTB(t testing.TB, cfg config.Gateway) *harness {
	t.Helper()
	pool, _ := tmpl.Pool(t)
	sealer, err := store.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	st := store.New(pool, sealer)
	sim, err := ctctest.NewServer("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(sim.Close)
	ctx := context.Background()
	org, err := st.CreateOrganization(ctx, "Org", nil)
	require.NoError(t, err)
	f, err := st.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "F"})
	require.NoError(t, err)
	h := &harness{t: t, st: st, pool: pool, sim: sim, factory: f.ID, logs: &testutil.SyncBuffer{}, cfg: cfg}
	h.startRuntime()
	return h
}

func (h *harness) startRuntime() {
	log := zerolog.New(h.logs).Level(zerolog.InfoLevel)
	h.rt = actors.Start(h.cfg, h.st, log, actors.Options{ReconcileInterval: time.Hour, SeenFlushInterval: 50 * time.Millisecond})
	rt := h.rt
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(h.t, rt.Shutdown(ctx))
	})
	require.Eventually(h.t, rt.Ready, 5*time.Second, 5*time.Millisecond)
}

// add creates a gateway in the store and the simulator and tells the
// runtime, as the API does.
func (h *harness) add(name string) (store.Gateway, *ctctest.Gateway) {
	h.t.Helper()
	sg := h.sim.Add(name, ctctest.Config{Email: name + "@example.com", Password: "pw-" + name})
	g, err := h.st.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.factory, GatewayID: name, Name: name,
		URL: sg.URL(), Email: name + "@example.com", Password: "pw-" + name})
	require.NoError(h.t, err)
	h.rt.GatewayStarted(store.Connection{ID: g.ID, FactoryID: g.FactoryID, URL: g.URL, Email: g.Email, Password: "pw-" + name})
	return g, sg
}

func (h *harness) status(id uuid.UUID) actors.Status {
	h.t.Helper()
	st, err := h.rt.Status(context.Background(), id)
	require.NoError(h.t, err)
	return st
}

// waitState polls until the gateway is in state, or fails with the last
// status seen.
func (h *harness) waitState(id uuid.UUID, state actors.State, within time.Duration) actors.Status {
	h.t.Helper()
	var last actors.Status
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st, err := h.rt.Status(context.Background(), id)
		if err == nil {
			last = st
			if st.State == state {
				return st
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("gateway %s: want state %s, last status %+v", id, state, last)
	return last
}

func eventually(t *testing.T, cond func() bool, within time.Duration, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, within, 5*time.Millisecond, fmt.Sprintf(msg, args...))
}

func TestCreateAuthenticatesWithTheRightFirstFrame(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("alpha")
	st := h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	assert.Equal(t, actors.DesiredConnected, st.Desired)
	assert.NotNil(t, st.ConnectedAt)
	assert.NotNil(t, st.LastSeenAt)
	assert.Nil(t, st.LastError)
	assert.Nil(t, st.NextRetryAt)
	assert.Equal(t, 0, st.ReconnectAttempts)
	assert.Equal(t, g.FactoryID, st.FactoryID)
	stats := sg.Stats()
	require.NotEmpty(t, stats.Frames)
	assert.Equal(t, "POST_LOGIN", stats.Frames[0].Type)
	assert.Contains(t, stats.Frames[0].Raw, `"Email":"alpha@example.com","Password":"pw-alpha"`)
	assert.NotContains(t, stats.Frames[0].Raw, "Correlation")
	assert.Equal(t, 0, stats.Violations)
	total, auth := h.rt.Counts()
	assert.Equal(t, 1, total)
	assert.Equal(t, 1, auth)

	// last_seen_at reaches the database through the batch writer.
	eventually(t, func() bool {
		got, err := h.st.GetGateway(context.Background(), g.ID)
		return err == nil && got.LastSeenAt != nil
	}, 3*time.Second, "last_seen_at written")
}

func TestRefusedLoginIsAuthFailedUntilCredentialsChange(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("refuser")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	sg.SetFaults(ctctest.Faults{RefuseLogins: true})
	sg.Drop(websocket.CloseGoingAway)
	st := h.waitState(g.ID, actors.StateAuthFailed, 3*time.Second)
	require.NotNil(t, st.LastError)
	assert.Equal(t, "Invalid email or password", *st.LastError)
	assert.Nil(t, st.NextRetryAt)
	before := sg.Stats().Accepted
	time.Sleep(300 * time.Millisecond) // several backoff periods: no retry may happen
	assert.Equal(t, before, sg.Stats().Accepted, "no retries in AUTH_FAILED")

	// A password change leaves AUTH_FAILED.
	sg.SetFaults(ctctest.Faults{})
	h.sim.Add("refuser", ctctest.Config{Email: "refuser@example.com", Password: "new"})
	up, err := h.st.UpdateGateway(context.Background(), g.ID, store.GatewayPatch{Password: store.Some("new")})
	require.NoError(t, err)
	h.rt.GatewayUpdated(up.Connection)
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	frames := sg.Stats().Frames
	assert.Contains(t, frames[len(frames)-1].Raw, `"Password":"new"`)
}

func TestConnectLeavesAuthFailed(t *testing.T) {
	h := newHarness(t, fastConfig())
	name := "wrongpw"
	sg := h.sim.Add(name, ctctest.Config{Email: "e@example.com", Password: "right"})
	g, err := h.st.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.factory, GatewayID: name, Name: name,
		URL: sg.URL(), Email: "e@example.com", Password: "wrong"})
	require.NoError(t, err)
	h.rt.GatewayStarted(store.Connection{ID: g.ID, FactoryID: h.factory, URL: sg.URL(), Email: "e@example.com", Password: "wrong"})
	st := h.waitState(g.ID, actors.StateAuthFailed, 3*time.Second)
	assert.Equal(t, 1, st.ReconnectAttempts)
	h.sim.Add(name, ctctest.Config{Email: "e@example.com", Password: "wrong"})
	st, err = h.rt.Connect(context.Background(), g.ID)
	require.NoError(t, err)
	assert.Equal(t, actors.StateConnecting, st.State)
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
}

func TestDisconnectAndConnect(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("dc")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	st, err := h.rt.Disconnect(context.Background(), g.ID)
	require.NoError(t, err)
	assert.Equal(t, actors.StateDisconnected, st.State)
	assert.Equal(t, actors.DesiredDisconnected, st.Desired)
	eventually(t, func() bool { return sg.Stats().Open == 0 }, 2*time.Second, "socket closed")
	assert.Equal(t, []int{1000}, sg.Stats().CloseCodes)
	time.Sleep(200 * time.Millisecond) // several backoff periods: no reconnect may happen
	assert.Equal(t, 1, sg.Stats().Accepted, "no reconnect while disconnected")
	st, err = h.rt.Disconnect(context.Background(), g.ID)
	require.NoError(t, err, "idempotent")
	assert.Equal(t, actors.StateDisconnected, st.State)

	_, err = h.rt.Connect(context.Background(), g.ID)
	require.NoError(t, err)
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	st, err = h.rt.Connect(context.Background(), g.ID)
	require.NoError(t, err)
	assert.Equal(t, actors.StateAuthenticated, st.State, "connect is idempotent")
	assert.Equal(t, 2, sg.Stats().Accepted)
}

func TestBackoffGrowsThenRecovers(t *testing.T) {
	h := newHarness(t, fastConfig())
	name := "down"
	sg := h.sim.Add(name, ctctest.Config{Email: "e@example.com", Password: "p"})
	sg.SetFaults(ctctest.Faults{StallHandshake: true})
	g, err := h.st.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.factory, GatewayID: name, Name: name,
		URL: sg.URL(), Email: "e@example.com", Password: "p"})
	require.NoError(t, err)
	h.rt.GatewayStarted(store.Connection{ID: g.ID, FactoryID: h.factory, URL: sg.URL(), Email: "e@example.com", Password: "p"})
	var first actors.Status
	eventually(t, func() bool {
		first = h.status(g.ID)
		return first.State == actors.StateBackoff
	}, 3*time.Second, "backoff")
	require.NotNil(t, first.NextRetryAt)
	require.NotNil(t, first.LastError)
	eventually(t, func() bool { return h.status(g.ID).ReconnectAttempts >= 3 }, 5*time.Second, "attempts grow")
	sg.SetFaults(ctctest.Faults{})
	st := h.waitState(g.ID, actors.StateAuthenticated, 5*time.Second)
	assert.Equal(t, 0, st.ReconnectAttempts, "reset after login")
	assert.Nil(t, st.LastError)
}

func TestLoginTimeoutAndDropsAreBackoff(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("mute")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	sg.SetFaults(ctctest.Faults{IgnoreLogins: true})
	sg.Drop(0)
	eventually(t, func() bool {
		st := h.status(g.ID)
		return st.LastError != nil && strings.Contains(*st.LastError, "no answer to login")
	}, 3*time.Second, "login timeout reported")
	sg.SetFaults(ctctest.Faults{})
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
}

func TestWithheldPongsAreDetected(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("nopong")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	accepted := sg.Stats().Accepted
	sg.SetFaults(ctctest.Faults{WithholdPongs: true})
	start := time.Now()
	eventually(t, func() bool {
		st := h.status(g.ID)
		return st.LastError != nil && strings.Contains(*st.LastError, "no pong")
	}, 3*time.Second, "dead connection detected")
	// Detected within ping interval + pong timeout (plus scheduling slack).
	assert.Less(t, time.Since(start), h.cfg.PingInterval+h.cfg.PongTimeout+time.Second)
	sg.SetFaults(ctctest.Faults{})
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	assert.Greater(t, sg.Stats().Accepted, accepted, "reconnected")
}

func TestUpdateOnlyReconnectsOnConnectionChange(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("upd")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	// Same settings (a rename): no new connection.
	up, err := h.st.UpdateGateway(context.Background(), g.ID, store.GatewayPatch{Name: store.Some("renamed"), URL: store.Some(g.URL)})
	require.NoError(t, err)
	h.rt.GatewayUpdated(up.Connection)
	time.Sleep(100 * time.Millisecond) // time for a wrong reconnect to show
	assert.Equal(t, 1, sg.Stats().Accepted)
	assert.Equal(t, actors.StateAuthenticated, h.status(g.ID).State)

	// A new url moves it to another gateway.
	other := h.sim.Add("upd-2", ctctest.Config{Email: "upd@example.com", Password: "pw-upd"})
	up, err = h.st.UpdateGateway(context.Background(), g.ID, store.GatewayPatch{URL: store.Some(other.URL())})
	require.NoError(t, err)
	h.rt.GatewayUpdated(up.Connection)
	eventually(t, func() bool { return other.Stats().Logins == 1 }, 3*time.Second, "moved to the new url")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	eventually(t, func() bool { return sg.Stats().Open == 0 }, 2*time.Second, "old socket closed")
	assert.Equal(t, []int{1000}, sg.Stats().CloseCodes)
}

func TestDeleteClosesWith1000AndForgets(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("del")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	require.NoError(t, h.st.DeleteGateway(context.Background(), g.ID))
	h.rt.GatewaysRemoved([]uuid.UUID{g.ID})
	eventually(t, func() bool { return sg.Stats().Open == 0 }, 2*time.Second, "closed")
	assert.Equal(t, []int{1000}, sg.Stats().CloseCodes)
	_, err := h.rt.Status(context.Background(), g.ID)
	assert.ErrorIs(t, err, actors.ErrNotFound)
	total, auth := h.rt.Counts()
	assert.Equal(t, 0, total)
	assert.Equal(t, 0, auth)
}

func TestCrashRestartsOnlyThatGateway(t *testing.T) {
	h := newHarness(t, fastConfig())
	var ids []uuid.UUID
	var sims []*ctctest.Gateway
	for i := range 10 {
		g, sg := h.add(fmt.Sprintf("c%d", i))
		ids, sims = append(ids, g.ID), append(sims, sg)
	}
	for _, id := range ids {
		h.waitState(id, actors.StateAuthenticated, 5*time.Second)
	}
	require.NoError(t, h.rt.Crash(context.Background(), ids[0]))
	eventually(t, func() bool {
		st := h.status(ids[0])
		return st.Restarts == 1 && st.State == actors.StateAuthenticated
	}, 3*time.Second, "restarted and reconnected")
	assert.Equal(t, 2, sims[0].Stats().Accepted, "new connection")
	for i := 1; i < 10; i++ {
		st := sims[i].Stats()
		assert.Equal(t, 1, st.Accepted, "gateway %d untouched", i)
		assert.Equal(t, 1, st.Open)
		assert.Equal(t, 0, h.status(ids[i]).Restarts)
	}
	assert.Contains(t, h.logs.String(), actors.ChaosPanic)
}

func TestCrashLoopIsFailedAndConnectBringsItBack(t *testing.T) {
	cfg := fastConfig()
	cfg.RestartLimit = 2
	h := newHarness(t, cfg)
	g, sg := h.add("loop")
	other, osg := h.add("steady")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	h.waitState(other.ID, actors.StateAuthenticated, 3*time.Second)
	for i := range 3 {
		require.NoError(t, h.rt.Crash(context.Background(), g.ID), "crash %d", i)
		if i < 2 {
			eventually(t, func() bool { return h.status(g.ID).Restarts == i+1 }, 3*time.Second, "restart %d", i+1)
		}
	}
	st := h.waitState(g.ID, actors.StateFailed, 3*time.Second)
	assert.Equal(t, 2, st.Restarts)
	require.NotNil(t, st.LastError)
	assert.Contains(t, *st.LastError, "crashed 3 times")
	eventually(t, func() bool { return sg.Stats().Open == 0 }, 2*time.Second, "socket closed when FAILED")
	assert.ErrorIs(t, h.rt.Crash(context.Background(), g.ID), actors.ErrNotRunning)
	assert.Equal(t, 1, osg.Stats().Accepted, "the other gateway kept its connection")

	_, err := h.rt.Connect(context.Background(), g.ID)
	require.NoError(t, err)
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
}

func TestGarbageNeverCrashes(t *testing.T) {
	h := newHarness(t, fastConfig())
	g, sg := h.add("noisy")
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
	sg.SetFaults(ctctest.Faults{Garbage: true, GarbageEvery: time.Millisecond})
	eventually(t, func() bool { return sg.Stats().GarbageSent >= 200 }, 5*time.Second, "200 garbage frames sent")
	eventually(t, func() bool { return strings.Contains(h.logs.String(), "dropped frames from gateway") }, 2*time.Second, "drops logged")
	st := h.status(g.ID)
	assert.Equal(t, actors.StateAuthenticated, st.State)
	assert.Equal(t, 0, st.Restarts)
	assert.Equal(t, 1, sg.Stats().Accepted)
	sg.SetFaults(ctctest.Faults{})
}

func TestRestartOfServiceReconnectsActiveOnly(t *testing.T) {
	h := newHarness(t, fastConfig())
	a, asg := h.add("keep")
	b, bsg := h.add("gone")
	h.waitState(a.ID, actors.StateAuthenticated, 3*time.Second)
	h.waitState(b.ID, actors.StateAuthenticated, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.rt.Shutdown(ctx))
	eventually(t, func() bool { return asg.Stats().Open == 0 && bsg.Stats().Open == 0 }, 2*time.Second, "all closed")
	assert.Equal(t, []int{1000}, asg.Stats().CloseCodes)
	require.NoError(t, h.st.DeleteGateway(context.Background(), b.ID))

	h.startRuntime()
	h.waitState(a.ID, actors.StateAuthenticated, 3*time.Second)
	_, err := h.rt.Status(context.Background(), b.ID)
	assert.ErrorIs(t, err, actors.ErrNotFound)
	assert.Equal(t, 1, bsg.Stats().Accepted)
}

func TestReconcilePicksUpAnotherProcessesWrites(t *testing.T) {
	h := newHarness(t, fastConfig())
	sg := h.sim.Add("external", ctctest.Config{Email: "x@example.com", Password: "p"})
	g, err := h.st.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.factory, GatewayID: "external", Name: "x",
		URL: sg.URL(), Email: "x@example.com", Password: "p"})
	require.NoError(t, err)
	_, err = h.rt.Status(context.Background(), g.ID)
	assert.ErrorIs(t, err, actors.ErrNotFound)
	h.rt.Reconcile()
	eventually(t, func() bool {
		st, err := h.rt.Status(context.Background(), g.ID)
		return err == nil && st.State == actors.StateAuthenticated
	}, 3*time.Second, "reconciled")
	require.NoError(t, h.st.DeleteGateway(context.Background(), g.ID))
	h.rt.Reconcile()
	eventually(t, func() bool {
		_, err := h.rt.Status(context.Background(), g.ID)
		return err != nil
	}, 3*time.Second, "removed by reconcile")
	eventually(t, func() bool { return sg.Stats().Open == 0 }, 2*time.Second, "closed")
}

func TestNoGoroutineLeftBehind(t *testing.T) {
	h := newHarness(t, fastConfig())
	baseline := runtime.NumGoroutine()
	var ids []uuid.UUID
	for i := range 20 {
		g, _ := h.add(fmt.Sprintf("leak%d", i))
		ids = append(ids, g.ID)
	}
	for _, id := range ids {
		h.waitState(id, actors.StateAuthenticated, 5*time.Second)
	}
	assert.Greater(t, runtime.NumGoroutine(), baseline)
	h.rt.GatewaysRemoved(ids)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		var buf strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Fatalf("goroutines: baseline %d, now %d:\n%s", baseline, n, buf.String())
	}
}

// BenchmarkStatusRoundTrip: HTTP-free status request through the
// supervisor to an authenticated gateway's actor and back.
func BenchmarkStatusRoundTrip(b *testing.B) {
	h := newBenchHarness(b)
	g, _ := h.add("bench")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := h.rt.Status(context.Background(), g.ID); err == nil && st.State == actors.StateAuthenticated {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.rt.Status(ctx, g.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStatusDuringCrashLoopAlwaysAnswers: a status request that reaches
// an actor while it is being stopped for crashing too often is dropped by
// Proto.Actor; the supervisor's record must still answer, in time.
func TestStatusDuringCrashLoopAlwaysAnswers(t *testing.T) {
	cfg := fastConfig()
	cfg.RestartLimit = 0 // the first crash stops the actor
	h := newHarness(t, cfg)
	for round := range 10 {
		g, _ := h.add(fmt.Sprintf("loop-%d", round))
		h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
		done := make(chan struct{})
		errs := make(chan error, 1)
		go func() {
			defer close(done)
			for i := 0; i < 50; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := h.rt.Status(ctx, g.ID)
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
		require.NoError(t, h.rt.Crash(context.Background(), g.ID))
		<-done
		select {
		case err := <-errs:
			t.Fatalf("round %d: status failed: %v", round, err)
		default:
		}
		h.waitState(g.ID, actors.StateFailed, 3*time.Second)
	}
}

// A password sealed with another key (ENCRYPTION_KEY changed) leaves the
// gateway FAILED with a message that says so; setting the password again
// brings it back.
func TestUnreadablePasswordIsFailedUntilSetAgain(t *testing.T) {
	h := newHarness(t, fastConfig())
	sg := h.sim.Add("rekeyed", ctctest.Config{Email: "r@example.com", Password: "pw"})
	other, err := store.NewSealer([]byte("another key, 32 bytes long!!!!!!"))
	require.NoError(t, err)
	oldKeyStore := store.New(h.pool, other)
	g, err := oldKeyStore.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.factory, GatewayID: "rekeyed",
		Name: "r", URL: sg.URL(), Email: "r@example.com", Password: "pw"})
	require.NoError(t, err)
	h.rt.Reconcile()
	st := h.waitState(g.ID, actors.StateFailed, 3*time.Second)
	require.NotNil(t, st.LastError)
	assert.Contains(t, *st.LastError, "cannot be decrypted")
	assert.Equal(t, 0, sg.Stats().Accepted, "no login with a garbage password")

	up, err := h.st.UpdateGateway(context.Background(), g.ID, store.GatewayPatch{Password: store.Some("pw")})
	require.NoError(t, err)
	assert.True(t, up.Reconnect)
	h.rt.GatewayUpdated(up.Connection)
	h.waitState(g.ID, actors.StateAuthenticated, 3*time.Second)
}
