package actors_test

// (Found by an audit, helper 15, whose test this is.) the backoff count a crash carries over after a
// settings change that raced an earlier crash.

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

// Contract: reconfigure (gateway.go) — "a change of url, email or
// password reconnects" and resets the backoff count (setFailures(0));
// README: new credentials forget what the old settings earned. Helper 3's
// fix makes a crash with unread settings start the new actor afresh
// (before = nil), but w.failures — the backoff count a crash carries over —
// keeps the old settings' count: the new actor starts at 0 and, as it
// logs in with a.failures == 0, never arms the healthy timer that would
// clear it. The next crash of this healthy gateway then resumes the stale
// count, and its next connection loss waits backoff(N+1) instead of
// backoff(1). Would catch: the backoff count earned by an old URL
// surviving a URL change that raced a crash.
func TestUnreadCrashForgetsTheOldBackoffCount(t *testing.T) {
	cfg := actorstest.FastConfig()
	cfg.BackoffInitial, cfg.BackoffMax, cfg.BackoffMultiplier = 50*time.Millisecond, 60*time.Second, 2
	cfg.PingInterval = 20 * time.Second // the healthy timer stays far away
	h := newHarness(t, cfg)
	ctx := context.Background()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := fmt.Sprintf("ws://%s/", l.Addr())
	require.NoError(t, l.Close())

	email, pw := actorstest.Credentials("stale-backoff")
	sg := h.Sim.Add("stale-backoff", ctctest.Config{Email: email, Password: pw})
	g, err := h.Store.CreateGateway(ctx, store.NewGateway{FactoryID: h.Factory, GatewayID: "stale-backoff", Name: "stale-backoff",
		URL: dead, Email: email, Password: pw})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(g.Target(pw))
	// Earn a long backoff on the dead URL.
	var st gatewayd.Status
	require.True(t, testutil.Poll(func() bool {
		st, err = h.Runtime.Status(ctx, g.ID)
		return err == nil && st.ReconnectAttempts >= 6
	}, 20*time.Second), "status %+v", st)

	// Fix the URL while the actor crashes: the supervisor applies the PUT
	// (unread) and then restarts the actor.
	fixed, err := h.Store.UpdateGateway(ctx, g.ID, store.GatewayPatch{URL: store.Some(sg.URL()), Password: store.Some(pw)})
	require.NoError(t, err)
	actors.CrashThenUpdate(h.Runtime, fixed.Target)
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	// A plain crash of the healthy gateway, then a connection loss.
	require.NoError(t, h.Runtime.Crash(ctx, g.ID))
	require.True(t, testutil.Poll(func() bool {
		st, err = h.Runtime.Status(ctx, g.ID)
		return err == nil && st.Restarts == 2 && st.State == gatewayd.StateAuthenticated && sg.Stats().Open == 1
	}, 10*time.Second), "status %+v", st)
	sg.Drop(1000)
	require.True(t, testutil.Poll(func() bool {
		st, err = h.Runtime.Status(ctx, g.ID)
		return err == nil && st.State == gatewayd.StateBackoff && st.NextRetryAt != nil
	}, 10*time.Second), "status %+v", st)
	wait := st.NextRetryAt.Sub(st.Since)
	// backoff(1) with 50% jitter is at most 75 ms.
	require.LessOrEqual(t, wait, 200*time.Millisecond,
		"first retry after the new URL's first loss waits %s (a stale count from the old URL); status %+v", wait, st)
}
