package actors_test

// Chaos checks of supervision and desired state. (Checked by an audit,
// helper 3, whose tests these are.)

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// settle waits until the gateway's status and the simulator agree with the
// stored desired state: CONNECTED → AUTHENTICATED with exactly one open
// socket; DISCONNECTED → DISCONNECTED with none. It fails with what it saw.
func settle(t *testing.T, h *actorstest.Harness, id uuid.UUID, sg *ctctest.Gateway) {
	t.Helper()
	ctx := context.Background()
	stored, err := h.Store.GetGateway(ctx, id)
	require.NoError(t, err)
	want, open := gatewayd.StateAuthenticated, 1
	if stored.DesiredState == gatewayd.DesiredDisconnected {
		want, open = gatewayd.StateDisconnected, 0
	}
	var st gatewayd.Status
	ok := testutil.Poll(func() bool {
		st, err = h.Runtime.Status(ctx, id)
		return err == nil && st.State == want && st.Desired == stored.DesiredState && sg.Stats().Open == open
	}, 15*time.Second)
	require.True(t, ok, "gateway %s: stored desired %s, want %s with %d open; status %+v (err %v, last_error %s), open %d",
		stored.GatewayID, stored.DesiredState, want, open, st, err, derefS(st.LastError), sg.Stats().Open)
	// The list (the supervisor's record) says the same.
	list, err := h.Runtime.Statuses(ctx, nil)
	require.NoError(t, err)
	for _, s := range list {
		if s.ID == id {
			assert.Equal(t, stored.DesiredState, s.Desired, "listed desired_state of %s", stored.GatewayID)
		}
	}
}

func derefS(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// The final state of a gateway matches the last accepted desired state
// (stored, in /status and in the list), with exactly one live socket when
// connected and none when not, whatever interleaving of connect,
// disconnect, PUT (name or password) and crash drills came before —
// including crash drills that exhaust GATEWAY_RESTART_LIMIT (FAILED) —
// and a bystander gateway's connection is never touched (same
// connected_at, no new dial). Would catch: a wish lost with a crashed
// actor, a second socket after a respawn, a FAILED gateway that a later
// connect/PUT does not bring back, a crash loop that reaches another
// gateway.
func TestChaosInterleavingsEndInTheLastWish(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.RestartLimit = 2
	h := newHarness(t, cfg)
	ctx := context.Background()
	steady, steadySims := h.AddAuthenticated("steady", 1)
	before := h.Status(steady[0].ID)
	require.NotNil(t, before.ConnectedAt)
	steadyAccepted := steadySims[0].Stats().Accepted

	gws, sims := h.AddAuthenticated("victim", 3)
	pw := map[uuid.UUID]string{}
	for _, g := range gws {
		_, pw[g.ID] = actorstest.Credentials(g.GatewayID)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for round := range 12 {
		for i, g := range gws {
			var ops []string
			for range 1 + rng.IntN(5) {
				switch rng.IntN(6) {
				case 0, 1:
					_ = h.Runtime.Crash(ctx, g.ID) // may be FAILED already: not running
					ops = append(ops, "crash")
				case 2:
					_, _, err := h.Store.SetDesiredState(ctx, g.ID, gatewayd.DesiredConnected)
					require.NoError(t, err)
					_, err = h.Runtime.Connect(ctx, g.ID)
					require.NoError(t, err)
					ops = append(ops, "connect")
				case 3:
					_, _, err := h.Store.SetDesiredState(ctx, g.ID, gatewayd.DesiredDisconnected)
					require.NoError(t, err)
					_, err = h.Runtime.Disconnect(ctx, g.ID)
					require.NoError(t, err)
					ops = append(ops, "disconnect")
				case 4:
					h.Update(g.ID, store.GatewayPatch{Name: store.Some(fmt.Sprintf("victim-%d-r%d", i, round))})
					ops = append(ops, "rename")
				case 5:
					p := fmt.Sprintf("pw-%d-%d", i, round)
					email, _ := actorstest.Credentials(g.GatewayID)
					// The simulator accepts both until the runtime has it.
					h.Sim.Add(g.GatewayID, ctctest.Config{Email: email, Password: p})
					h.Update(g.ID, store.GatewayPatch{Password: store.Some(p)})
					pw[g.ID] = p
					ops = append(ops, "password")
				}
			}
			// The last word is a wish (crashes past the limit leave FAILED,
			// which only a connect or a change leaves, API.md §4), sent
			// right behind whatever crash drill is still on its way.
			d, act, name := gatewayd.DesiredConnected, h.Runtime.Connect, "connect"
			if rng.IntN(2) == 0 {
				d, act, name = gatewayd.DesiredDisconnected, h.Runtime.Disconnect, "disconnect"
			}
			_, _, err := h.Store.SetDesiredState(ctx, g.ID, d)
			require.NoError(t, err)
			_, err = act(ctx, g.ID)
			require.NoError(t, err)
			ops = append(ops, name)
			t.Logf("round %d gateway %d: %v", round, i, ops)
		}
		for i, g := range gws {
			settle(t, h, g.ID, sims[i])
			st := h.Status(g.ID)
			if st.State == gatewayd.StateAuthenticated {
				assert.Contains(t, actorstest.LastLogin(sims[i]), fmt.Sprintf("%q", pw[g.ID]), "gateway %d logs in with its last password", i)
			}
		}
	}
	after := h.Status(steady[0].ID)
	assert.Equal(t, gatewayd.StateAuthenticated, after.State)
	assert.Equal(t, before.ConnectedAt, after.ConnectedAt, "the bystander kept its connection")
	assert.Equal(t, steadyAccepted, steadySims[0].Stats().Accepted, "the bystander was never dialed again")
	assert.Equal(t, 0, after.Restarts)
}

// A deletion racing crash drills (one that restarts the actor and one that
// exhausts the budget) removes the gateway: 404 from the runtime, no
// socket left, no actor left in the registry. Would catch: a respawn
// after a delete (a crashed-out actor's Terminated spawning it again).
func TestDeleteRacingCrashesLeavesNoActor(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.RestartLimit = 1
	h := newHarness(t, cfg)
	ctx := context.Background()
	gws, sims := h.AddAuthenticated("doomed", 6)
	for i, g := range gws {
		// i crashes before the delete: 0 (none), 1 (a restart), 2+ (FAILED).
		for range i % 3 {
			_ = h.Runtime.Crash(ctx, g.ID)
		}
		if i%2 == 1 { // and a connect in between for half of them
			_, _ = h.Runtime.Connect(ctx, g.ID)
		}
		_, err := h.Store.DeleteGateway(ctx, g.ID)
		require.NoError(t, err)
		h.Runtime.GatewaysRemoved([]uuid.UUID{g.ID}, nil)
		_ = h.Runtime.Crash(ctx, g.ID) // after: 404
	}
	for i, g := range gws {
		ok := testutil.Poll(func() bool {
			_, err := h.Runtime.Status(ctx, g.ID)
			return errors.Is(err, gatewayd.ErrNotFound) && sims[i].Stats().Open == 0 &&
				actors.LiveGatewayActors(h.Runtime)[g.ID.String()] == 0
		}, 10*time.Second)
		require.True(t, ok, "gateway %d gone: open %d, actors %v", i, sims[i].Stats().Open, actors.LiveGatewayActors(h.Runtime))
	}
	// A reconciliation brings none back.
	h.Runtime.Reconcile()
	list, err := h.Runtime.Statuses(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, list)
	assert.Empty(t, actors.LiveGatewayActors(h.Runtime))
}

// After many kill/respawn cycles (restarts, crash-outs to FAILED and
// connects back) and the gateways' deletion, goroutines and the process
// registry return to their baseline. Would catch: reader, dialer or timer
// goroutines of crashed incarnations left behind; PIDs never unregistered.
func TestKillRespawnCyclesReturnToBaseline(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.RestartLimit = 2
	h := newHarness(t, cfg)
	ctx := context.Background()
	steady, _ := h.AddAuthenticated("base", 1)
	baseline := runtime.NumGoroutine()
	gws, _ := h.AddAuthenticated("cycler", 4)
	for range 8 {
		for _, g := range gws {
			for range 3 { // the third is one too many: FAILED
				_ = h.Runtime.Crash(ctx, g.ID)
			}
		}
		for _, g := range gws {
			h.WaitState(g.ID, gatewayd.StateFailed, 10*time.Second)
			_, err := h.Runtime.Connect(ctx, g.ID)
			require.NoError(t, err)
		}
		for _, g := range gws {
			h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
		}
	}
	ids := make([]uuid.UUID, len(gws))
	for i, g := range gws {
		_, err := h.Store.DeleteGateway(ctx, g.ID)
		require.NoError(t, err)
		ids[i] = g.ID
	}
	h.Runtime.GatewaysRemoved(ids, nil)
	var n int
	var live map[string]int
	ok := testutil.Poll(func() bool {
		n, live = runtime.NumGoroutine(), actors.LiveGatewayActors(h.Runtime)
		return n <= baseline+2 && len(live) == 1 && live[steady[0].ID.String()] == 1
	}, 15*time.Second)
	assert.True(t, ok, "goroutines %d (baseline %d), gateway actors %v", n, baseline, live)
}
