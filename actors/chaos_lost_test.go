package actors

// (Found by an audit, helper 17, whose tests these are: the chaos promise.)

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// API.md §4: "POST /api/gateways/:id/disconnect → 202 status; stores
// desired_state DISCONNECTED, closes the WebSocket (close code 1000),
// state DISCONNECTED, no retries until connect". API.md §5: a chaos crash
// restarts the actor, and past GATEWAY_RESTART_LIMIT the gateway is
// FAILED. An operator's disconnect that reaches the supervisor right
// after a crash request (the actor has not panicked yet) is forwarded to
// the actor, which then panics for the last time and is stopped with the
// disconnect still in its mailbox: the disconnect is dropped. The gateway
// ends FAILED with desired_state CONNECTED in its status (the database
// says DISCONNECTED), and the disconnect's own 202 answer (from the
// record, after the actor's timeout) said so too. Whatever the order of
// the two, the disconnect came last: the gateway ends DISCONNECTED,
// desired DISCONNECTED.
func TestDisconnectRightAfterAFatalCrashIsNotLost(t *testing.T) {
	t.Parallel()
	rt, cfg := crashOutRuntime(t)
	ids := startGateways(rt, 3, gatewayd.DesiredConnected)
	ctx := context.Background()
	for _, id := range ids {
		require.Eventually(t, func() bool {
			st, err := rt.Status(ctx, id)
			return err == nil && st.State == gatewayd.StateBackoff
		}, 10*time.Second, 5*time.Millisecond, "dial refused: BACKOFF")
	}
	answers := make([]answer[gatewayd.Status], len(ids))
	for i, id := range ids {
		// Back to back into the supervisor's mailbox, as two HTTP
		// requests a moment apart: the crash drill, then the disconnect.
		c := &crashGateway{id: id}
		c.answers()
		d := &disconnectGateway{id: id}
		answers[i] = d.answers()
		rt.d.root.Send(rt.supervisor, c)
		rt.d.root.Send(rt.supervisor, d)
	}
	for i, id := range ids {
		select {
		case rep := <-answers[i]:
			require.NoError(t, rep.err)
			assert.Equal(t, gatewayd.DesiredDisconnected, rep.value.Desired, "gateway %d: the disconnect's answer", i)
		case <-time.After(cfg.ActorTimeout):
			// Dropped with the stopped actor: the HTTP handler falls back
			// to the record after ActorTimeout, which says what is
			// checked below. (Answering it sooner would need the
			// supervisor to keep every forwarded request's answer: left.)
			t.Logf("gateway %d: the disconnect's answer went with the actor; the API answers from the record", i)
		}
		st, err := settledIn(rt, id, gatewayd.StateDisconnected)
		require.NoError(t, err)
		assert.Equal(t, gatewayd.StateDisconnected, st.State, "gateway %d: the disconnect stands (last_error %s)", i, deref(st.LastError))
		assert.Equal(t, gatewayd.DesiredDisconnected, st.Desired, "gateway %d: desired_state as stored", i)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// API.md §4: "POST /api/gateways/:id/connect → 202 status; stores
// desired_state CONNECTED; idempotent; also leaves AUTH_FAILED and
// FAILED." The same race as above with a connect: a connect that reaches
// the supervisor right after the crash request that makes the gateway
// FAILED is forwarded to the doomed actor and dropped with it; the
// gateway stays FAILED (no actor, no dial) although the connect came
// after the crash and was answered 202.
func TestConnectRightAfterAFatalCrashIsNotLost(t *testing.T) {
	t.Parallel()
	rt, _ := crashOutRuntime(t)
	// DISCONNECTED gateways (no dial): the connect must make them dial
	// (CONNECTING, then BACKOFF at the refused address).
	ids := startGateways(rt, 3, gatewayd.DesiredDisconnected)
	ctx := context.Background()
	for _, id := range ids {
		require.Eventually(t, func() bool {
			st, err := rt.Status(ctx, id)
			return err == nil && st.State == gatewayd.StateDisconnected
		}, 10*time.Second, 5*time.Millisecond)
	}
	for _, id := range ids {
		c := &crashGateway{id: id}
		c.answers()
		k := &connectGateway{id: id}
		k.answers()
		rt.d.root.Send(rt.supervisor, c)
		rt.d.root.Send(rt.supervisor, k)
	}
	for i, id := range ids {
		st, err := settledIn(rt, id, gatewayd.StateBackoff)
		require.NoError(t, err)
		assert.Equal(t, gatewayd.StateBackoff, st.State, "gateway %d: the connect stands: it dialed (last_error %s)", i, deref(st.LastError))
		assert.Equal(t, gatewayd.DesiredConnected, st.Desired, "gateway %d", i)
	}
}

// crashOutRuntime is a runtime whose first crash makes a gateway FAILED
// (GATEWAY_RESTART_LIMIT 0), whose dials are refused at once and retried
// only after an hour, and whose actors answer within 200 ms.
func crashOutRuntime(t *testing.T) (*Runtime, Config) {
	t.Helper()
	cfg := Config{ConnectTimeout: 100 * time.Millisecond, AuthTimeout: 100 * time.Millisecond, CommandTimeout: time.Second,
		BackoffInitial: time.Hour, BackoffMax: time.Hour, BackoffMultiplier: 2, PingInterval: time.Minute, PongTimeout: time.Minute,
		DialConcurrency: 4, RestartLimit: 0, RestartWindow: time.Minute, ReconcileInterval: time.Hour,
		ActorTimeout: 200 * time.Millisecond}
	rt := Start(cfg, fixedSource{}, zerolog.Nop())
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	require.Eventually(t, rt.Ready, 10*time.Second, 5*time.Millisecond)
	return rt, cfg
}

// settledIn polls the gateway's status until it is state (within 3 s) and
// returns the last one read. (Polled in the test's goroutine, not in one
// of Eventually's, which may still write the status after it gave up.)
func settledIn(rt *Runtime, id uuid.UUID, state gatewayd.State) (gatewayd.Status, error) {
	var st gatewayd.Status
	var err error
	testutil.Poll(func() bool {
		st, err = rt.Status(context.Background(), id)
		return err == nil && st.State == state
	}, 3*time.Second)
	return st, err
}
