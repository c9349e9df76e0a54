package web_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// dbDownWorld starts gatewayd (auth on) with its database behind a proxy,
// one authenticated gateway, an admin token the process has confirmed,
// and returns them with the proxy.
func dbDownWorld(t *testing.T, port int) (*realWorld, *cutProxy, string, string) {
	w := newRealWorld(t, port, "AUTH_ENABLED=true")
	a := w.addGateway("pg-a")
	_, admin, err := w.st.CreateToken(context.Background(), "audit admin", gatewayd.RoleAdmin, nil)
	require.NoError(t, err)
	u, err := url.Parse(w.dbURL)
	require.NoError(t, err)
	p := newCutProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	w.start(u.String())
	w.waitStates(admin, map[string]string{a: "AUTHENTICATED"})
	return w, p, a, admin
}

func (w *realWorld) waitDatabase(want string) {
	w.t.Helper()
	testutil.Eventually(w.t, func() bool {
		_, body := w.do("GET", "/health", "")
		var h struct{ Database string }
		_ = json.Unmarshal(body, &h)
		return h.Database == want
	}, 30*time.Second, "gatewayd's health says database %s", want)
	if want == "ok" {
		testutil.Eventually(w.t, func() bool { code, _ := w.do("GET", "/ready", ""); return code == 200 }, 30*time.Second, "ready")
	}
}

// (Found by an audit, helper 12, whose test this is.)
// An operator signs in while gatewayd's database is down, with a token
// this process has not confirmed yet (any token, after a restart): every
// request is 503, the fleet "could not be loaded". Once the database is
// back the fleet's snapshot and the role (whoami) are asked for again,
// and the page lists the fleet, as a viewer's, without a reload. (They
// were asked once: the page said "could not be loaded" for good under a
// header that said "Live", and offered a viewer every admin control.)
func TestFleetLoadedDuringADatabaseOutageRecovers(t *testing.T) {
	w, p, a, _ := dbDownWorld(t, 3505)
	_, viewer, err := w.st.CreateToken(context.Background(), "audit viewer", gatewayd.RoleViewer, nil)
	require.NoError(t, err)
	p.cut()
	w.waitDatabase("unreachable")

	b := newBrowser(t)
	tab := &uiTab{t: t, name: "fleet", ctx: b.ctx}
	tab.navigate(w.base + "/")
	signInTab(tab, viewer)
	tab.wait("the fleet says it could not be loaded", `/could not be loaded/.test(document.querySelector('#main')?.textContent || '')`, 30*time.Second)

	p.heal()
	w.waitDatabase("ok")
	tab.wait("live again", liveJS, 40*time.Second)
	shown := testutil.Poll(func() bool { ok, _ := tabEval[bool](tab, showsJS(a, "AUTHENTICATED")); return ok }, 20*time.Second)
	// whoami failed (503) too: the role is unknown and every admin control
	// shows to a viewer; it is never asked again either.
	role, _ := tabEval[string](tab, `document.documentElement.dataset.role || '(unknown)'`)
	assert.Equal(t, "viewer", role, "the page's role once the database is back")
	text, _ := tabEval[string](tab, `document.querySelector('#live').textContent + ' | ' + document.querySelector('#main').innerText.replace(/\s+/g, ' ').slice(0, 300)`)
	require.True(t, shown, "the fleet lists the gateway, 20 s after the stream is live again with the database back (no reload); the page shows: %s", text)
}

// (Found by an audit, helper 12, whose test this is.)
// A gateway's page opened while the database is down says "Gateway not
// available: Service temporarily unavailable" (its facts need the
// database). Once the database is back the page is drawn, without a
// reload: its first load is tried again. (It ended its scope at the
// first failure and said so for good, though its status, which needs no
// database, and everything else answered again.)
func TestGatewayPageOpenedDuringADatabaseOutageRecovers(t *testing.T) {
	w, p, a, admin := dbDownWorld(t, 3506)
	b := newBrowser(t)
	tab := &uiTab{t: t, name: "gateway page", ctx: b.ctx}
	tab.navigate(w.base + "/")
	signInTab(tab, admin)
	tab.wait("live", liveJS, 15*time.Second)

	p.cut()
	w.waitDatabase("unreachable")
	tab.do("the gateway's page", navigateHash("#/gateways/"+a))
	tab.wait("it says the gateway is not available", `/not available/.test(document.querySelector('#main h1')?.textContent || '')`, 30*time.Second)

	p.heal()
	w.waitDatabase("ok")
	tab.wait("live", liveJS, 20*time.Second)
	shown := testutil.Poll(func() bool { ok, _ := tabEval[bool](tab, showsJS(a, "AUTHENTICATED")); return ok }, 30*time.Second)
	text, _ := tabEval[string](tab, `document.querySelector('#live').textContent + ' | ' + document.querySelector('#main').innerText.replace(/\s+/g, ' ').slice(0, 300)`)
	require.True(t, shown, "the gateway's page shows its status, 30 s after the database is back (no reload); the page shows: %s", text)
}
