package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
)

// With access control on (API.md §10), the UI asks for a token, refuses
// to go on with a wrong one, then sends the right one on every request
// (Authorization: Bearer) and on the event stream (access_token), and the
// fleet is live; the token lasts the tab, sign-out forgets it.
func TestUISignIn(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h, func(o *api.Options) { o.AuthEnabled = true })
	_, secret, err := h.Store.CreateToken(context.Background(), "ui test", gatewayd.RoleViewer, nil)
	require.NoError(t, err)

	b := newBrowser(t)
	b.do("open the UI", chromedp.Navigate(base+"/"))
	b.wait("the sign-in dialog", `document.querySelector('#signin')?.open`)
	b.do("a wrong token", chromedp.SendKeys(chromedp.CSS(`#signin-token`), "gwd_nope"),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	b.wait("asked again, with why", `document.querySelector('#signin')?.open && document.querySelector('#signin .form-error:not([hidden])')?.textContent.includes('not accepted')`)
	b.shot("sign-in")
	b.do("the right token", chromedp.SendKeys(chromedp.CSS(`#signin-token`), secret),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	b.wait("the fleet", `!document.querySelector('#signin').open && document.querySelector('#shown')?.textContent === 'Showing 0 of 0 gateways'`)
	b.wait("the stream live", `document.querySelector('#live')?.textContent === 'Live'`)
	assert.Equal(t, "main", eval[string](b, `document.activeElement?.id || document.activeElement?.tagName`),
		"a keyboard user goes on from the content after signing in")
	assert.Equal(t, secret, eval[string](b, `sessionStorage.getItem('gatewayd.token')`))
	assert.False(t, eval[bool](b, `document.querySelector('#signout').hidden`), "a sign-out button")

	// Live with the token: a gateway added now shows up authenticated, which
	// only the event stream (access_token) can have told the page.
	g, _ := h.Add("gated")
	b.wait("the new gateway, live", `document.querySelector('.row-name[href="#/gateways/`+g.ID.String()+`"]')?.parentElement.querySelector('.badge')?.textContent === 'AUTHENTICATED'`)
	b.shot("signed-in")

	// A viewer is not offered what it may not do (TestUIOffersWhatTheRoleMay).
	b.do("the organizations", chromedp.Click(chromedp.CSS(`.nav a[href="#/organizations"]`)))
	b.wait("no create form", `document.documentElement.dataset.role === 'viewer' && document.querySelector('details.create')?.getClientRects().length === 0`)

	// A reload keeps the token for the tab: no dialog.
	b.do("reload", chromedp.Navigate(base+"/"))
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

// A request sent without a token whose 401 comes back after the user has
// signed in is retried with the token, not answered with a second sign-in
// dialog: the fleet's status snapshot (sent up to 3 s after the page
// opens, when the event stream has not opened) hung behind a dialog the
// user had already answered, and the fleet page stayed empty (CI, on a
// loaded box).
func TestA401ForATokenlessRequestAfterSignInRetries(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h, func(o *api.Options) { o.AuthEnabled = true })
	g, _ := h.Add("late-401")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	_, secret, err := h.Store.CreateToken(context.Background(), "ui test", gatewayd.RoleViewer, nil)
	require.NoError(t, err)

	b := newBrowser(t)
	release := b.holdAnswer("the fleet's snapshot, sent without a token", "*/api/gateways/status",
		chromedp.Navigate(base+"/"))
	b.wait("the sign-in dialog", `document.querySelector('#signin')?.open`)
	b.do("sign in", chromedp.SendKeys(chromedp.CSS(`#signin-token`), secret),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	b.wait("signed in", `document.documentElement.dataset.role === 'viewer'`)
	release() // its 401 arrives now, after the token
	b.wait("the fleet", `document.querySelector('.row-name[href="#/gateways/`+g.ID.String()+`"]')`)
	assert.False(t, eval[bool](b, `document.querySelector('#signin').open`), "asked for a token already given")
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
