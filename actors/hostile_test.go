package actors_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
)

// Peers that accept TCP and never finish the handshake hold a dial slot
// for the whole connect timeout. Once they have failed they dial in a lane
// of their own, so a healthy gateway's reconnect never waits behind them.
func TestHungHandshakesDoNotStarveHealthyGateways(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.DialConcurrency = 8
	cfg.ConnectTimeout = 2 * time.Second
	cfg.BackoffInitial, cfg.BackoffMax = 10*time.Millisecond, 20*time.Millisecond
	h := newHarness(t, cfg)
	gws, _ := h.AddAuthenticated("healthy", 1)
	healthy := gws[0]
	var hung []gatewayd.Gateway
	for i := range 16 {
		g, sg := h.Create(fmt.Sprintf("hung-%d", i))
		sg.SetFaults(ctctest.Faults{StallHandshake: true})
		_, pw := actorstest.Credentials(sg.Name())
		h.Runtime.GatewayStarted(g.Target(pw))
		hung = append(hung, g)
	}
	// Every hung gateway has failed once (its first dial took a healthy
	// slot for the whole timeout) and now retries in the failing lane.
	for _, g := range hung {
		eventually(t, func() bool { return h.Status(g.ID).ReconnectAttempts >= 1 }, 10*time.Second, "hung gateway failed once")
	}
	// The failing lane holds at most half the slots: 16 hung peers keep it
	// full for 2 s at a time, and the healthy gateway still gets a slot
	// (without the lane it would queue behind them for seconds).
	h.Sim.Gateway("healthy-0").Drop(websocket.CloseGoingAway)
	h.WaitState(healthy.ID, gatewayd.StateBackoff, time.Second)
	h.WaitState(healthy.ID, gatewayd.StateAuthenticated, 1500*time.Millisecond)
}

// A dial that the actor abandons (a disconnect, a delete) gives its slot
// back at once, not when the handshake timeout passes.
func TestAbandonedDialReleasesItsSlot(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.DialConcurrency = 1
	cfg.ConnectTimeout = time.Minute
	h := newHarness(t, cfg)
	stuck, ssg := h.Create("stuck")
	ssg.SetFaults(ctctest.Faults{StallHandshake: true})
	_, pw := actorstest.Credentials("stuck")
	h.Runtime.GatewayStarted(stuck.Target(pw))
	eventually(t, func() bool { return h.Sim.HandshakePeak() == 1 }, 2*time.Second, "the only slot is taken by a hung handshake")
	next, _ := h.Add("next")
	_, err := h.Runtime.Disconnect(t.Context(), stuck.ID)
	require.NoError(t, err)
	h.WaitState(next.ID, gatewayd.StateAuthenticated, 5*time.Second)
}

// A gateway that breaks every connection right after login keeps backing
// off: the login alone does not reset the count, and the last error stays
// visible.
func TestFlappingGatewayKeepsBackingOff(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.PingInterval = time.Second // the connection must stay up this long to count as healthy
	cfg.PongTimeout = time.Second
	h := newHarness(t, cfg)
	gws, sims := h.AddAuthenticated("flap", 1)
	g, sg := gws[0], sims[0]
	sg.SetFaults(ctctest.Faults{DropAfter: 20 * time.Millisecond})
	sg.Drop(0)
	eventually(t, func() bool { return sg.Stats().Logins >= 4 }, 10*time.Second, "it logs in again and again")
	st := h.Status(g.ID)
	assert.GreaterOrEqual(t, st.ReconnectAttempts, 3, "failures keep counting across logins")
	require.NotNil(t, st.LastError)
	sg.SetFaults(ctctest.Faults{})
	eventually(t, func() bool {
		st := h.Status(g.ID)
		return st.State == gatewayd.StateAuthenticated && st.ReconnectAttempts == 0 && st.LastError == nil
	}, 10*time.Second, "healthy again after a ping interval up")
}
