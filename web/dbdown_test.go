package web_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Checked by an audit, helper 12, whose tests these are.)
// The database goes away (gatewayd's DATABASE_URL points at a TCP proxy
// the test cuts; PostgreSQL itself stays up) while a gateway's page is
// open, then comes back.
func TestUIDatabaseDownAndUp(t *testing.T) {
	w := newRealWorld(t, 3504, "AUTH_ENABLED=true")
	a := w.addGateway("db-a")
	ctx := context.Background()
	_, admin, err := w.st.CreateToken(ctx, "audit admin", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	u, err := url.Parse(w.dbURL)
	require.NoError(t, err)
	p := newCutProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	w.start(u.String())
	w.waitStates(admin, map[string]string{a: "AUTHENTICATED"})

	b := newBrowser(t)
	tab := &uiTab{t: t, name: "gateway a", ctx: b.ctx}
	tab.navigate(w.base + "/#/gateways/" + a)
	signInTab(tab, admin)
	tab.wait("live", liveJS, 15*time.Second)
	tab.wait("a AUTHENTICATED", showsJS(a, "AUTHENTICATED"), 15*time.Second)
	tab.wait("its page drawn", `document.querySelector('#gw-disconnect') && document.querySelector('section[aria-labelledby=gw-h] dl')`, 15*time.Second)

	// Down.
	p.cut()
	testutil.Eventually(t, func() bool {
		_, body := w.do("GET", "/health", "")
		var h struct{ Database string }
		_ = json.Unmarshal(body, &h)
		return h.Database == "unreachable"
	}, 20*time.Second, "gatewayd sees its database down")

	// A disconnect cannot be stored: the page says so, and goes on
	// showing the gateway as it is (AUTHENTICATED).
	tab.do("disconnect", chromedp.Click(chromedp.CSS(`#gw-disconnect`)))
	tab.wait("the refusal, told", `[...document.querySelectorAll('#toasts .toast-error')].some(t => /unavailable/i.test(t.textContent))`, 20*time.Second)
	shownErr, _ := tabEval[string](tab, `[...document.querySelectorAll('#toasts .toast')].map(t => t.textContent).join(' | ')`)
	t.Logf("what the page said of the refused disconnect: %q", shownErr)
	ok, _ := tabEval[bool](tab, showsJS(a, "AUTHENTICATED"))
	assert.True(t, ok, "the page still shows a AUTHENTICATED after a disconnect that could not be stored")
	w.waitStates(admin, map[string]string{a: "AUTHENTICATED"})

	// The stream goes on without the database: a dropped connection and
	// the reconnect are shown live.
	before, _ := tabEval[float64](tab, `document.querySelectorAll('.history li').length`)
	w.sims[a].Drop(websocket.CloseGoingAway)
	tab.wait("the drop and the reconnect, live", `document.querySelectorAll('.history li').length >= `+strconv.Itoa(int(before)+2)+` && `+showsJS(a, "AUTHENTICATED"), 20*time.Second)
	tab.wait("still live", liveJS, 5*time.Second)

	// The fleet needs no database: it shows.
	tab.do("the fleet", chromedp.Navigate(w.base+"/#/"))
	tab.wait("the fleet, from the runtime", showsJS(a, "AUTHENTICATED"), 20*time.Second)
	// A page that needs the database says it cannot be had, not nothing.
	tab.do("organizations", chromedp.Navigate(w.base+"/#/organizations"))
	tab.wait("a message for the organizations", `/unavailable|could not|cannot/i.test(document.querySelector('#main')?.textContent || '')`, 20*time.Second)
	asked, _ := tabEval[bool](tab, `document.querySelector('#signin').open`)
	assert.False(t, asked, "a database outage asks for a token again")

	// Up again: everything works, without a reload.
	p.heal()
	testutil.Eventually(t, func() bool { code, _ := w.do("GET", "/ready", ""); return code == 200 }, 30*time.Second, "gatewayd ready again")
	tab.do("the gateway's page", chromedp.Navigate(w.base+"/#/gateways/"+a))
	tab.wait("its page drawn", `document.querySelector('#gw-disconnect') && document.querySelector('section[aria-labelledby=gw-h] dl')`, 15*time.Second)
	tab.do("disconnect", chromedp.Click(chromedp.CSS(`#gw-disconnect`)))
	tab.wait("a DISCONNECTED", showsJS(a, "DISCONNECTED"), 15*time.Second)
	w.waitStates(admin, map[string]string{a: "DISCONNECTED"})
	tab.wait("live", liveJS, 5*time.Second)
	asked, _ = tabEval[bool](tab, `document.querySelector('#signin').open`)
	assert.False(t, asked, "asked for a token again")
	t.Logf("console problems: %v", b.problems())
}

func (tb *uiTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v", tb.name, what, err)
	}
}

// navigateHash follows an in-page link (the router, no reload).
func navigateHash(hash string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void]("location.hash = "+js(hash), chromedp.EvalAwaitPromise)
}
