package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Checked by an audit, helper 12, whose tests these are.)
// gatewayd restarted (SIGTERM, started again on the same port) while two
// tabs are open, the fleet and a gateway's page: both say the live
// connection is lost, reconnect by themselves, and then show exactly what
// GET /api/gateways/status says — changes made while gatewayd was down
// (a gateway disconnected, one deleted, one added) included — and go on
// showing the new process's events (its ids are not those of the old
// one).
func TestUIAcrossAGatewaydRestart(t *testing.T) {
	w := newRealWorld(t, 3501, "AUTH_ENABLED=false")
	a := w.addGateway("rs-a")
	bb := w.addGateway("rs-b")
	c := w.addGateway("rs-c")
	w.start("")
	w.waitStates("", map[string]string{a: "AUTHENTICATED", bb: "AUTHENTICATED", c: "AUTHENTICATED"})

	b := newBrowser(t)
	b.do("the fleet", chromedp.Navigate(w.base+"/"))
	fleetTab := &uiTab{t: t, name: "fleet", ctx: b.ctx}
	gwTab := openUITab(t, b, "gateway a", w.base+"/#/gateways/"+a)
	fleetTab.wait("live", liveJS, 15*time.Second)
	gwTab.wait("live", liveJS, 15*time.Second)
	fleetTab.wait("the fleet as the API has it", fleetRowsJS+` === `+js(apiRows(w.statuses(""))), 15*time.Second)
	gwTab.wait("a AUTHENTICATED", showsJS(a, "AUTHENTICATED"), 15*time.Second)

	// Down.
	w.stop()
	fleetTab.wait("the fleet says it lost the stream", `document.querySelector('#live')?.textContent !== 'Live'`, 15*time.Second)
	gwTab.wait("the gateway page says it lost the stream", `document.querySelector('#live')?.textContent !== 'Live'`, 15*time.Second)

	// Meanwhile, in the database: a disconnected by an operator (another
	// instance's writes, a migration, a restore), c deleted, d added.
	ctx := context.Background()
	_, err := w.pool.Exec(ctx, `UPDATE gateways SET desired_state = 'DISCONNECTED' WHERE id = $1`, a)
	require.NoError(t, err)
	_, err = w.pool.Exec(ctx, `UPDATE gateways SET deleted_at = now() WHERE id = $1`, c)
	require.NoError(t, err)
	d := w.addGateway("rs-d")

	// Up again.
	w.start("")
	w.waitStates("", map[string]string{a: "DISCONNECTED", bb: "AUTHENTICATED", d: "AUTHENTICATED"})
	fleetTab.wait("the fleet live again", liveJS, 40*time.Second)
	gwTab.wait("the gateway page live again", liveJS, 40*time.Second)
	want := apiRows(w.statuses(""))
	var shown string
	testutil.Poll(func() bool { shown, _ = tabEval[string](fleetTab, fleetRowsJS); return shown == want }, 15*time.Second)
	assert.Equal(t, want, shown, "the fleet's rows, 15 s after it is live again, against GET /api/gateways/status")
	testutil.Poll(func() bool { ok, _ := tabEval[bool](gwTab, showsJS(a, "DISCONNECTED")); return ok }, 15*time.Second)
	ok, _ := tabEval[bool](gwTab, showsJS(a, "DISCONNECTED"))
	assert.True(t, ok, "the gateway page shows a DISCONNECTED after the restart")

	// The new process's events reach both tabs.
	code, body := w.do("POST", "/gateways/"+bb+"/disconnect", "")
	require.Equal(t, 202, code, "%s", body)
	code, body = w.do("POST", "/gateways/"+a+"/connect", "")
	require.Equal(t, 202, code, "%s", body)
	w.waitStates("", map[string]string{a: "AUTHENTICATED", bb: "DISCONNECTED"})
	want = apiRows(w.statuses(""))
	testutil.Poll(func() bool { shown, _ = tabEval[string](fleetTab, fleetRowsJS); return shown == want }, 15*time.Second)
	assert.Equal(t, want, shown, "the fleet after changes made once gatewayd is back")
	testutil.Poll(func() bool { ok, _ := tabEval[bool](gwTab, showsJS(a, "AUTHENTICATED")); return ok }, 15*time.Second)
	ok, _ = tabEval[bool](gwTab, showsJS(a, "AUTHENTICATED"))
	assert.True(t, ok, "the gateway page follows a's connect after the restart")
	counts, _ := tabEval[string](fleetTab, `[...document.querySelectorAll('.count')].map(e => e.dataset.state + '=' + e.querySelector('.count-n').textContent).join(' ')`)
	assert.Contains(t, counts, "AUTHENTICATED=2")
	assert.Contains(t, counts, "DISCONNECTED=1")
	t.Logf("console problems (network errors while gatewayd was down are expected): %v", b.problems())
}
