package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// signInJS is true once the sign-in dialog is open and says why.
const signInAgainJS = `document.querySelector('#signin')?.open &&
  document.querySelector('#signin .form-error:not([hidden])')?.textContent.includes('not accepted')`

func signInTab(tb *uiTab, secret string) {
	tb.t.Helper()
	tb.wait("the sign-in dialog", `document.querySelector('#signin')?.open`, 15*time.Second)
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#signin-token`), secret),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`))); err != nil {
		tb.t.Fatalf("%s: sign in: %v", tb.name, err)
	}
	tb.wait("signed in", `!document.querySelector('#signin').open`, 15*time.Second)
}

// (Checked by an audit, helper 12, whose tests these are.)
// A token that expires, or is revoked, while two tabs (the fleet and a
// gateway's page) are open: the UI says so and asks for a token again,
// the event stream ends (the server holds none for it), what happens
// meanwhile is not shown, and signing in again with another token brings
// it all back, live.
func TestUITokenEnds(t *testing.T) {
	for _, how := range []string{"expires", "revoked"} {
		t.Run(how, func(t *testing.T) {
			port := 3502
			if how == "revoked" {
				port = 3503
			}
			w := newRealWorld(t, port, "AUTH_ENABLED=true")
			a := w.addGateway("tk-a")
			bb := w.addGateway("tk-b")
			ctx := context.Background()
			_, admin, err := w.st.CreateToken(ctx, "audit admin", gatewayd.RoleAdmin, nil)
			require.NoError(t, err)
			var expires *time.Time
			if how == "expires" {
				at := time.Now().Add(12 * time.Second)
				expires = &at
			}
			short, secret, err := w.st.CreateToken(ctx, "audit short", gatewayd.RoleViewer, expires)
			require.NoError(t, err)
			_, other, err := w.st.CreateToken(ctx, "audit other", gatewayd.RoleViewer, nil)
			require.NoError(t, err)
			w.start("")
			w.waitStates(admin, map[string]string{a: "AUTHENTICATED", bb: "AUTHENTICATED"})

			b := newBrowser(t)
			fleetTab := &uiTab{t: t, name: "fleet", ctx: b.ctx}
			fleetTab.navigate(w.base + "/")
			signInTab(fleetTab, secret)
			gwTab := openUITab(t, b, "gateway b", w.base+"/#/gateways/"+bb)
			signInTab(gwTab, secret)
			for _, tb := range []*uiTab{fleetTab, gwTab} {
				tb.wait("live", liveJS, 15*time.Second)
				tb.wait("b AUTHENTICATED", showsJS(bb, "AUTHENTICATED"), 15*time.Second)
			}
			testutil.Eventually(t, func() bool { return w.metricValue(admin, "gatewayd_event_subscribers") == "1" }, 20*time.Second,
				"one stream for the two tabs; %s", w.metricValue(admin, "gatewayd_event_subscribers"))

			if how == "revoked" {
				code, body := w.do("DELETE", "/tokens/"+short.ID.String(), admin)
				require.Equal(t, 204, code, "%s", body)
			}
			// The UI says so: the sign-in dialog, in both tabs, and the header is not Live.
			for _, tb := range []*uiTab{fleetTab, gwTab} {
				tb.wait("asked to sign in again, with why", signInAgainJS, 25*time.Second)
				tb.wait("not live", `document.querySelector('#live')?.textContent !== 'Live'`, 5*time.Second)
			}
			// The stream has ended on the server.
			testutil.Eventually(t, func() bool { return w.metricValue(admin, "gatewayd_event_subscribers") == "0" }, 10*time.Second,
				"no stream for an ended token; %s", w.metricValue(admin, "gatewayd_event_subscribers"))

			// Meanwhile b is disconnected: not shown while signed out.
			code, body := w.do("POST", "/gateways/"+bb+"/disconnect", admin)
			require.Equal(t, 202, code, "%s", body)
			w.waitStates(admin, map[string]string{bb: "DISCONNECTED"})
			assert.Equal(t, "0", w.metricValue(admin, "gatewayd_event_subscribers"), "a stream for the ended token")
			for _, tb := range []*uiTab{fleetTab, gwTab} {
				ok, err := tabEval[bool](tb, showsJS(bb, "AUTHENTICATED"))
				require.NoError(t, err)
				assert.True(t, ok, "%s: still shows what it knew before the end", tb.name)
			}

			// Another token: all back, live.
			for _, tb := range []*uiTab{fleetTab, gwTab} {
				signInTab(tb, other)
			}
			for _, tb := range []*uiTab{fleetTab, gwTab} {
				tb.wait("live again", liveJS, 20*time.Second)
				tb.wait("b DISCONNECTED, as it is", showsJS(bb, "DISCONNECTED"), 15*time.Second)
			}
			want := apiRows(w.statuses(admin))
			fleetTab.wait("the fleet as the API has it", fleetRowsJS+` === `+js(want), 15*time.Second)
			code, body = w.do("POST", "/gateways/"+bb+"/connect", admin)
			require.Equal(t, 202, code, "%s", body)
			for _, tb := range []*uiTab{fleetTab, gwTab} {
				tb.wait("b AUTHENTICATED again, live", showsJS(bb, "AUTHENTICATED"), 15*time.Second)
			}
			t.Logf("console problems: %v", b.problems())
		})
	}
}
