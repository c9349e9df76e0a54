// Package actorstest is the runtime's test harness, shared by the tests of
// actors and api: a configuration with short times, a fresh migrated
// database, the gateway simulator and a running runtime, with helpers to
// add gateways, wait for states, and wait for the runtime's test signals.
package actorstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/events"
	"github.com/ctcgw/gatewayd/internal/testdb"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/metrics"
	"github.com/ctcgw/gatewayd/store"
	"github.com/ctcgw/gatewayd/telemetry"
)

// FastConfig is a runtime configuration with times short enough for tests
// and long enough for a loaded 2-core machine running them in parallel
// under the race detector: a timeout that fires only because the machine
// is busy makes a test flaky, so timeouts are generous and retries fast.
// (With a 1 s login timeout, logins that took a second on a saturated
// machine timed out, retried into the same load and never got through.)
// A test of a timeout sets that one short itself.
func FastConfig() actors.Config {
	return actors.Config{
		ConnectTimeout: 5 * time.Second, AuthTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second,
		BackoffInitial: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BackoffMultiplier: 2,
		PingInterval: 200 * time.Millisecond, PongTimeout: 5 * time.Second, DialConcurrency: 64,
		RestartLimit: 3, RestartWindow: 10 * time.Second,
		ReconcileInterval: time.Hour, SeenFlushInterval: 50 * time.Millisecond, SensorFlushInterval: 20 * time.Millisecond,
		ReadingStartTimeout: 5 * time.Second, ReadingTimeout: 10 * time.Second, ReadingFlushInterval: 20 * time.Millisecond,
		// Longer than the 1 s of production: on a loaded test machine
		// (make test at -p 4) the lookup once took longer, and a reading
		// that tests the stored rate was stored without it.
		RateLookupTimeout: 10 * time.Second,
	}
}

// EventBase is where the harness's event ids start (the first is one more).
const EventBase = 1_000_000

// Settle is one Hooks.Settled call.
type Settle struct {
	ID    uuid.UUID
	State gatewayd.State
}

// Reconfig is one Hooks.Reconfigured call.
type Reconfig struct {
	ID        uuid.UUID
	Reconnect bool
}

// Harness is one test's world: database, simulator, runtime.
type Harness struct {
	T       testing.TB
	Store   *store.Store
	Pool    *pgxpool.Pool
	DBURL   string
	Sim     *ctctest.Server
	Runtime *actors.Runtime
	// Factory is a factory (under a fresh organization) to add gateways to.
	Factory uuid.UUID
	Logs    *testutil.SyncBuffer
	// ShutdownWait bounds the runtime's shutdown at the test's end
	// (0: 10 s).
	ShutdownWait time.Duration
	Log          zerolog.Logger
	Config       actors.Config

	Settled      *Signal[Settle]
	Reconfigured *Signal[Reconfig]
	// Entered has every change of state the runtime's observer was told
	// of (State is "" for a removed gateway).
	Entered *Signal[gatewayd.Status]
	// Telemetry is what the runtime feeds: metrics and the event broker,
	// as in production, for the API of a test to serve.
	Telemetry *telemetry.Observer
}

// New builds a harness on a fresh database cloned from tmpl and starts the
// runtime; everything is stopped and dropped when the test ends.
func New(t testing.TB, tmpl *testdb.Template, cfg actors.Config) *Harness {
	t.Helper()
	pool, dbURL := tmpl.Pool(t)
	sealer, err := store.NewSealer(testutil.Key)
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
	logs := &testutil.SyncBuffer{}
	// A failed test shows what the runtime logged: a flake on a loaded
	// machine is otherwise a bare assertion, its cause gone with the run.
	// (Its last 64 KiB: a thousand gateways log megabytes.)
	t.Cleanup(func() {
		if t.Failed() {
			text := logs.String()
			t.Logf("runtime log (end):\n%s", text[max(0, len(text)-64<<10):])
		}
	})
	h := &Harness{T: t, Store: st, Pool: pool, DBURL: dbURL, Sim: sim, Factory: f.ID, Logs: logs,
		Log: zerolog.New(logs).Level(zerolog.InfoLevel), Settled: NewSignal[Settle](), Reconfigured: NewSignal[Reconfig](), Entered: NewSignal[gatewayd.Status]()}
	// Event ids start after a base, as in production (after the start
	// time), so an id below it is from "an earlier process".
	h.Telemetry = &telemetry.Observer{Metrics: metrics.New(), Events: events.NewBrokerAfter(events.DefaultRingSize, EventBase),
		Log: h.Log}
	if cfg.Observer == nil {
		cfg.Observer = h.Telemetry
	}
	cfg.Observer = enteredObserver{Observer: cfg.Observer, entered: h.Entered}
	cfg.Hooks.Settled = func(id uuid.UUID, s gatewayd.State) { h.Settled.Send(Settle{id, s}) }
	cfg.Hooks.Reconfigured = func(id uuid.UUID, reconnect bool) { h.Reconfigured.Send(Reconfig{id, reconnect}) }
	h.Config = cfg
	h.StartRuntime()
	return h
}

// StartRuntime starts a (new) runtime on the harness's database and waits
// until it has loaded; it is shut down when the test ends.
func (h *Harness) StartRuntime() {
	h.T.Helper()
	rt := actors.Start(h.Config, h.Store, h.Log)
	h.Runtime = rt
	h.T.Cleanup(func() {
		wait := h.ShutdownWait
		if wait == 0 {
			wait = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		assert.NoError(h.T, rt.Shutdown(ctx))
	})
	// Loading is one query and a spawn per gateway; a test of a thousand
	// gateways on a loaded machine (make test with -p 4) took over 5 s.
	require.Eventually(h.T, rt.Ready, 30*time.Second, 5*time.Millisecond)
}

// Restart shuts the runtime down (every gateway closes with 1000) and
// starts a new one on the same database, as a restart of gatewayd would.
func (h *Harness) Restart() {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(h.T, h.Runtime.Shutdown(ctx))
	h.StartRuntime()
}

// Credentials of the simulated gateway called name.
func Credentials(name string) (email, password string) {
	return name + "@example.com", "pw-" + name
}

// Create registers a simulated gateway called name in the store only (as
// another process would); the runtime learns of it on reconciliation.
func (h *Harness) Create(name string) (gatewayd.Gateway, *ctctest.Gateway) {
	h.T.Helper()
	email, pw := Credentials(name)
	sg := h.Sim.Add(name, ctctest.Config{Email: email, Password: pw})
	g, err := h.Store.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.Factory, GatewayID: name, Name: name,
		URL: sg.URL(), Email: email, Password: pw})
	require.NoError(h.T, err)
	return g, sg
}

// Add creates a gateway in the store and the simulator and tells the
// runtime, as the API does.
func (h *Harness) Add(name string) (gatewayd.Gateway, *ctctest.Gateway) {
	h.T.Helper()
	g, sg := h.Create(name)
	_, pw := Credentials(name)
	h.Runtime.GatewayStarted(g.Target(pw))
	return g, sg
}

// AddAuthenticated adds n gateways named prefix-0… and waits until every
// one is AUTHENTICATED.
func (h *Harness) AddAuthenticated(prefix string, n int) ([]gatewayd.Gateway, []*ctctest.Gateway) {
	h.T.Helper()
	gws := make([]gatewayd.Gateway, n)
	sims := make([]*ctctest.Gateway, n)
	for i := range n {
		gws[i], sims[i] = h.Add(fmt.Sprintf("%s-%d", prefix, i))
	}
	for _, g := range gws {
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	}
	return gws, sims
}

// Update changes a gateway in the store and tells the runtime, as the API
// does.
func (h *Harness) Update(id uuid.UUID, p store.GatewayPatch) store.GatewayUpdate {
	h.T.Helper()
	up, err := h.Store.UpdateGateway(context.Background(), id, p)
	require.NoError(h.T, err)
	h.Runtime.GatewayUpdated(up.Target)
	return up
}

// Status asks the runtime for a gateway's status.
func (h *Harness) Status(id uuid.UUID) gatewayd.Status {
	h.T.Helper()
	st, err := h.Runtime.Status(context.Background(), id)
	require.NoError(h.T, err)
	return st
}

// WaitState polls until the gateway is in state, or fails with the last
// status seen.
func (h *Harness) WaitState(id uuid.UUID, state gatewayd.State, within time.Duration) gatewayd.Status {
	h.T.Helper()
	var last gatewayd.Status
	var lastErr error
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st, err := h.Runtime.Status(context.Background(), id)
		last, lastErr = st, err
		if err == nil && st.State == state {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.T.Fatalf("gateway %s: want state %s, last status %+v (error %v)", id, state, last, lastErr)
	return last
}

// WaitEntered waits until the gateway has entered state, however briefly
// it stayed there: a state that lasts a few milliseconds (BACKOFF between
// two dials) is easily missed by polling on a busy machine.
func (h *Harness) WaitEntered(id uuid.UUID, state gatewayd.State) gatewayd.Status {
	h.T.Helper()
	return h.WaitEnteredAfter(id, state, time.Time{})
}

// WaitEnteredAfter is WaitEntered for an entry after t, and returns the
// status the gateway had as it entered the state.
func (h *Harness) WaitEnteredAfter(id uuid.UUID, state gatewayd.State, t time.Time) gatewayd.Status {
	h.T.Helper()
	return h.Entered.Wait(h.T, func(s gatewayd.Status) bool { return s.ID == id && s.State == state && !s.Since.Before(t) })
}

// enteredObserver passes everything on and records changes of state.
type enteredObserver struct {
	actors.Observer
	entered *Signal[gatewayd.Status]
}

func (o enteredObserver) GatewayState(from gatewayd.State, st gatewayd.Status) {
	o.Observer.GatewayState(from, st)
	o.entered.Send(st)
}

// WaitSettled waits until the gateway's actor reports that it settled in
// state: from then on nothing is scheduled for its connection.
func (h *Harness) WaitSettled(id uuid.UUID, state gatewayd.State) {
	h.T.Helper()
	h.Settled.Wait(h.T, func(s Settle) bool { return s.ID == id && s.State == state })
}

// WaitReconfigured waits until the gateway's actor has applied new
// settings and returns whether it reconnected because of them.
func (h *Harness) WaitReconfigured(id uuid.UUID) bool {
	h.T.Helper()
	return h.Reconfigured.Wait(h.T, func(r Reconfig) bool { return r.ID == id }).Reconnect
}

// LastLogin returns the last POST_LOGIN frame a simulated gateway
// received, or "".
func LastLogin(sg *ctctest.Gateway) string {
	frames := sg.Stats().Frames
	for i := len(frames) - 1; i >= 0; i-- {
		if frames[i].Type == "POST_LOGIN" {
			return frames[i].Raw
		}
	}
	return ""
}
