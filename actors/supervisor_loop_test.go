package actors_test

// The supervisor's own crashes were restarted by Proto.Actor's default
// strategy for actors spawned from the root context: at most 10 restarts
// within 10 s. The 11th crash within that window stopped the supervisor
// for good, and with it every gateway actor:
// every connection was closed and none was ever dialed again, while the
// runtime still said it was ready and its counters (health, the state
// gauges) still counted the gateways as AUTHENTICATED. (Found by an
// audit, helper 5, whose test this is.) The mission: gatewayd
// "keeps one live, authenticated connection per active gateway, heals it
// when it breaks"; DESIGN.md: "a panic in an actor is the supervisor's
// business"; supervisor.started is written to recover from the
// supervisor's own crash ("standing in for any bug in its code").

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

func TestSupervisorOutlivesACrashLoop(t *testing.T) {
	h := newHarness(t, actorstest.FastConfig())
	ctx := context.Background()
	g, sg := h.Add("loop-victim")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	authenticated := func() bool {
		st, err := h.Runtime.Status(ctx, g.ID)
		return err == nil && st.State == gatewayd.StateAuthenticated && sg.Stats().Open == 1
	}
	// Twelve crashes of the supervisor (a bug hit again and again, e.g. by
	// a client retrying the request that triggers it), each after the
	// previous one has been recovered from: the gateway is authenticated
	// again in between.
	for i := range 12 {
		actors.PanicSupervisor(h.Runtime)
		if !testutil.Poll(authenticated, 10*time.Second) {
			st, err := h.Runtime.Status(ctx, g.ID)
			total, authed := h.Runtime.Counts()
			t.Fatalf("after supervisor crash %d the gateway never came back: status %+v, error %v; open sockets %d; "+
				"runtime ready %v, counts total %d authenticated %d", i+1, st, err, sg.Stats().Open, h.Runtime.Ready(), total, authed)
		}
	}
	assert.Equal(t, 1, sg.Stats().Open)
}
