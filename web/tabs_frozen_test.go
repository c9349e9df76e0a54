package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// README: "only the leader opens the stream and passes each event to the
// other tabs over a BroadcastChannel, with its status (the header's
// Live)". A browser freezes background tabs (Page Lifecycle: frozen; Chrome
// does it to save energy and memory, and the leader is often a tab in the
// background). A frozen leader keeps its Web Lock, passes nothing on and
// says nothing: the other tabs, the one in front included, go on showing
// "Live" and a gateway's state that is no longer true, for as long as the
// leader stays frozen.
// (Found by an audit, helper 10, whose test this is.)
func TestAFrozenLeaderLeavesNoTabStale(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := h.Add("frozen")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	id := g.ID.String()

	b := newBrowser(t)
	var tabs []*uiTab
	for i := 0; i < 2; i++ {
		tb := openUITab(t, b, fmt.Sprintf("tab %d", i+1), base+"/#/")
		tb.wait("live", liveJS+` && `+showsJS(id, "AUTHENTICATED"), 15*time.Second)
		tabs = append(tabs, tb)
	}
	leader := leaderOf(t, tabs)
	follower := tabs[0]
	if follower == leader {
		follower = tabs[1]
	}
	_, err := chromedp.Call(leader.ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateFrozen})
	require.NoError(t, err)

	postAPI(t, base, "/gateways/"+id+"/disconnect")
	h.WaitState(g.ID, gatewayd.StateDisconnected, 10*time.Second)
	// The follower shows the change, or at least stops claiming to be live.
	ok := testutil.Poll(func() bool {
		v, _ := tabEval[bool](follower, showsJS(id, "DISCONNECTED")+` || !(`+liveJS+`)`)
		return v
	}, 20*time.Second)
	shown, _ := tabEval[string](follower, tabStateJS)
	assert.True(t, ok, "20 s after the disconnect, with the leader frozen, the other tab shows %q and the gateway still %v",
		shown, func() bool { v, _ := tabEval[bool](follower, showsJS(id, "AUTHENTICATED")); return v }())
	_, _ = chromedp.Call(leader.ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateActive})
}

// A frozen tab leaves its group and joins again when resumed: the frozen
// leader's follower takes the lock and leads (one stream on the server, the
// frozen tab's closed) and shows what changed; the tab resumed follows the
// new leader and reloads what it shows (it missed events while frozen).
// The same for a follower frozen and resumed. (A tab resumed here stays
// hidden and draws nothing until shown, as in a browser: what it holds to
// draw, its fleet, is asked instead.)
func TestAFrozenTabLeavesItsGroupAndJoinsAgainWhenResumed(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := h.Add("frozen-resumed")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	id := g.ID.String()

	b := newBrowser(t)
	var tabs []*uiTab
	for i, r := range []string{"/", "/gateways/" + id} {
		tb := openUITab(t, b, fmt.Sprintf("tab %d", i+1), base+"/#"+r)
		tb.wait("live", liveJS+` && `+showsJS(id, "AUTHENTICATED"), 15*time.Second)
		tabs = append(tabs, tb)
	}
	leader := leaderOf(t, tabs)
	other := tabs[0]
	if other == leader {
		other = tabs[1]
	}
	lifecycle := func(tb *uiTab, st page.SetWebLifecycleStateState) {
		t.Helper()
		_, err := chromedp.Call(tb.ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: st})
		require.NoError(t, err, "%s: %s", tb.name, st)
	}
	const reloads = `performance.getEntriesByName('gwd:snapshot-applied').length`
	// resumed waits until tb follows, is live, has reloaded its fleet since
	// it had before loads, and holds the gateway in state.
	resumed := func(tb *uiTab, before int, state string) {
		t.Helper()
		js := `import('/ui/js/live.js').then(m => document.documentElement.dataset.stream === 'follower' && ` + liveJS +
			` && ` + reloads + fmt.Sprintf(` > %d && m.fleet.byId.get('%s')?.state === '%s')`, before, id, state)
		ok := testutil.Poll(func() bool { v, _ := tabEval[bool](tb, js); return v }, 20*time.Second)
		shown, _ := tabEval[string](tb, tabStateJS)
		n, _ := tabEval[int](tb, reloads)
		st, _ := tabEval[string](tb, `import('/ui/js/live.js').then(m => m.fleet.byId.get('`+id+`')?.state || '')`)
		require.True(t, ok, "%s resumed: shows %q, loaded its fleet %d times (%d before), holds the gateway %s, not %s",
			tb.name, shown, n, before, st, state)
	}

	// The leader is frozen: the other tab leads and shows the disconnect.
	before, err := tabEval[int](leader, reloads)
	require.NoError(t, err)
	lifecycle(leader, page.SetWebLifecycleStateStateFrozen)
	postAPI(t, base, "/gateways/"+id+"/disconnect")
	h.WaitState(g.ID, gatewayd.StateDisconnected, 10*time.Second)
	other.wait("leads, live, and shows the disconnect", `document.documentElement.dataset.stream === 'leader' && `+liveJS+` && `+showsJS(id, "DISCONNECTED"), 20*time.Second)
	testutil.Eventually(t, func() bool { return h.Telemetry.Events.Subscribers() == 1 }, 20*time.Second,
		"the frozen tab's stream closed, the new leader's open: the server holds %d", h.Telemetry.Events.Subscribers())

	// Resumed, it follows and holds what it missed.
	lifecycle(leader, page.SetWebLifecycleStateStateActive)
	resumed(leader, before, "DISCONNECTED")

	// A follower frozen and resumed: the same.
	follower := leader
	before, err = tabEval[int](follower, reloads)
	require.NoError(t, err)
	lifecycle(follower, page.SetWebLifecycleStateStateFrozen)
	postAPI(t, base, "/gateways/"+id+"/connect")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	other.wait("shows the connect", showsJS(id, "AUTHENTICATED"), 20*time.Second)
	lifecycle(follower, page.SetWebLifecycleStateStateActive)
	resumed(follower, before, "AUTHENTICATED")
	assert.Equal(t, map[string]int{"leader": 1, "follower": 1}, parts(tabs))
	testutil.Eventually(t, func() bool { return h.Telemetry.Events.Subscribers() == 1 }, 20*time.Second,
		"one event stream for both tabs; the server holds %d", h.Telemetry.Events.Subscribers())
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
