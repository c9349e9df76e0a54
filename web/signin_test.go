package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// bearerGate stands in front of the API as access control will (API.md
// §10): the UI's files, health, readiness and the docs are open; every
// other /api route wants Authorization: Bearer <token> — /api/events also
// takes ?access_token=, since EventSource cannot send headers — and says
// 401 with WWW-Authenticate: Bearer otherwise. It counts what it let
// through with the token, and takes the access_token off the query (the
// API of this branch does not know it yet).
type bearerGate struct {
	token                string
	next                 http.Handler
	withHeader, viaQuery atomic.Int64
}

func (g *bearerGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	open := !strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/api/health" || r.URL.Path == "/api/ready" ||
		r.URL.Path == "/api/docs" || r.URL.Path == "/api/openapi.json"
	q := r.URL.Query()
	switch {
	case open:
	case r.Header.Get("Authorization") == "Bearer "+g.token:
		g.withHeader.Add(1)
	case r.URL.Path == "/api/events" && q.Get("access_token") == g.token:
		g.viaQuery.Add(1)
		q.Del("access_token")
		r.URL.RawQuery = q.Encode()
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatewayd"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"UNAUTHORIZED","message":"A valid API token is required","statusCode":401}}`))
		return
	}
	g.next.ServeHTTP(w, r)
}

// With access control on, the UI asks for a token, refuses to go on with
// a wrong one, then sends the right one on every request and on the
// event stream, and the fleet is live.
func TestUISignIn(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	api, err := url.Parse(serve(t, h))
	require.NoError(t, err)
	gate := &bearerGate{token: "gwd_test-token", next: httputil.NewSingleHostReverseProxy(api)}
	front := httptest.NewServer(gate)
	t.Cleanup(front.Close)

	b := newBrowser(t)
	b.do("open the UI", chromedp.Navigate(front.URL+"/"))
	b.wait("the sign-in dialog", `document.querySelector('#signin')?.open`)
	b.do("a wrong token", chromedp.SendKeys(chromedp.CSS(`#signin-token`), "nope"),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	b.wait("asked again, with why", `document.querySelector('#signin')?.open && document.querySelector('#signin .form-error:not([hidden])')?.textContent.includes('not accepted')`)
	b.shot("sign-in")
	b.do("the right token", chromedp.SendKeys(chromedp.CSS(`#signin-token`), gate.token),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	b.wait("the fleet", `!document.querySelector('#signin').open && document.querySelector('#shown')?.textContent === 'Showing 0 of 0 gateways'`)
	b.wait("the stream live", `document.querySelector('#live')?.textContent === 'Live'`)
	assert.Equal(t, gate.token, eval[string](b, `sessionStorage.getItem('gatewayd.token')`))
	assert.False(t, eval[bool](b, `document.querySelector('#signout').hidden`), "a sign-out button")

	// Live through the gate: a gateway added now shows up authenticated.
	g, _ := h.Add("gated")
	b.wait("the new gateway, live", `document.querySelector('.row-name[href="#/gateways/`+g.ID.String()+`"]')?.parentElement.querySelector('.badge')?.textContent === 'AUTHENTICATED'`)
	assert.Positive(t, gate.withHeader.Load(), "API requests carried the bearer token")
	assert.Positive(t, gate.viaQuery.Load(), "the event stream carried access_token")
	b.shot("signed-in")

	// A reload keeps the token for the tab: no dialog.
	b.do("reload", chromedp.Reload())
	b.wait("the fleet again", `document.querySelector('.row-name')`, 10*time.Second)
	assert.False(t, eval[bool](b, `document.querySelector('#signin').open`))
	// Signing out forgets it.
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`#signout`)))); err != nil {
		b.fail("sign out: %v", err)
	}
	b.wait("asked again", `document.querySelector('#signin')?.open`)
	assert.Empty(t, eval[string](b, `sessionStorage.getItem('gatewayd.token') || ''`))
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
