package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The UI offers what the token's role may do (GET /api/whoami) and not
// the rest, which the API would refuse with 403: a viewer reads, an
// operator also connects, disconnects, discovers and takes readings, an
// admin also creates, edits and deletes. The API still decides: a form
// offered while the role is unknown shows the 403 it gets.
func TestUIOffersWhatTheRoleMay(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h, func(o *api.Options) { o.AuthEnabled = true })
	ctx := context.Background()
	g, _ := h.Add("roles")
	var sensorID string
	testutil.Eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(ctx, g.ID)
		if err == nil && len(list) > 0 {
			sensorID = list[0].ID.String()
		}
		return sensorID != ""
	}, 10*time.Second, "the gateway's sensors, discovered after its login")

	// shown is what the page offers: the controls that need a role, each
	// offered only if it is rendered (not display:none).
	const shown = `(() => {
	  const on = sel => [...document.querySelectorAll(sel)].some(e => e.getClientRects().length > 0);
	  return [on('#gw-connect') && 'connect', on('#take-reading') && 'take a reading',
	    on('details.create') && 'create', on('section[aria-labelledby=edit-h]') && 'edit',
	    on('section[aria-labelledby=set-h]') && 'sensor settings', on('.panel-danger') && 'delete']
	    .filter(Boolean).join(', ');
	})()`
	// goHash follows a link inside the page, as a click would.
	goHash := func(route string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`location.hash = ` + js("#"+route))
	}
	for _, c := range []struct {
		role gatewayd.Role
		// on each page: the gateway's, the sensor's, the factory list, a factory's
		gateway, sensor, list, factory string
	}{
		{gatewayd.RoleViewer, "", "", "", ""},
		{gatewayd.RoleOperator, "connect", "take a reading", "", ""},
		{gatewayd.RoleAdmin, "connect, edit, delete", "take a reading, sensor settings", "create", "edit, delete"},
	} {
		t.Run(string(c.role), func(t *testing.T) {
			b := signedIn(t, h, base, "/", c.role)
			assert.Equal(t, "Signed in as \u2068"+string(c.role)+" in the UI\u2069 ("+string(c.role)+")",
				eval[string](b, `document.querySelector('#signout').title`))

			b.do("the gateway's page", goHash("/gateways/"+g.ID.String()))
			b.wait("its status", `document.querySelector('.status-facts dl')?.dataset.state === 'AUTHENTICATED'`)
			b.wait("its settings drawn", `document.querySelector('section[aria-labelledby=edit-h]')`)
			assert.Equal(t, c.gateway, eval[string](b, shown), "the gateway's page")

			b.do("the sensor's page", goHash("/sensors/"+sensorID))
			b.wait("its facts", `document.querySelector('section[aria-labelledby=sn-h] dl')`)
			b.wait("its settings drawn", `document.querySelector('section[aria-labelledby=set-h]')`)
			assert.Equal(t, c.sensor, eval[string](b, shown), "the sensor's page")

			b.do("the factories", goHash("/factories"))
			b.wait("the list", `document.querySelector('main table tbody tr')`)
			assert.Equal(t, c.list, eval[string](b, shown), "the factory list")

			b.do("a factory", goHash("/factories/"+g.FactoryID.String()))
			b.wait("its gateways", `document.querySelector('section[aria-labelledby=gw-h] tbody tr')`)
			b.wait("its form drawn", `document.querySelector('section[aria-labelledby=edit-h]')`)
			assert.Equal(t, c.factory, eval[string](b, shown), "a factory's page")
			assert.Equal(t, c.role == gatewayd.RoleAdmin,
				eval[bool](b, `[...document.querySelectorAll('a.btn')].some(a => a.textContent === 'Register a gateway here' && a.getClientRects().length > 0)`),
				"register a gateway here")

			if c.role == gatewayd.RoleViewer {
				// With the role unknown (whoami failed, say), the form is
				// offered, and the API's 403 shows on it.
				b.do("forget the role", chromedp.Evaluate[chromedp.Void](`delete document.documentElement.dataset.role`),
					goHash("/organizations"))
				b.wait("the organizations", `document.querySelector('details.create > summary')`)
				b.do("try to create an organization", chromedp.Click(chromedp.CSS(`details.create > summary`)),
					chromedp.SendKeys(chromedp.CSS(`details.create [name=name]`), "Not mine"),
					chromedp.Click(chromedp.CSS(`details.create button[type=submit]`)))
				b.wait("refused", `document.querySelector('details.create .form-error:not([hidden])')?.textContent.includes('FORBIDDEN')`)
			}
			assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
		})
	}
}

// signedIn opens the UI at route with a token of role and waits
// until the page knows the role (GET /api/whoami).
func signedIn(t *testing.T, h *actorstest.Harness, base, route string, role gatewayd.Role) *browser {
	t.Helper()
	_, secret, err := h.Store.CreateToken(context.Background(), string(role)+" in the UI", role, nil)
	require.NoError(t, err)
	b := newBrowser(t)
	b.do("open the UI", chromedp.Navigate(base+"/#"+route))
	b.wait("the sign-in dialog", `document.querySelector('#signin')?.open`)
	b.do("sign in", chromedp.SendKeys(chromedp.CSS(`#signin-token`), secret),
		chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))
	b.wait("the role known", `document.documentElement.dataset.role === `+js(string(role)))
	return b
}

// (Found by an audit, helper 9, whose test this is.) README "Roles": "a viewer sees no forms and no buttons
// that change anything, an operator also gets connect, disconnect,
// discover and Take a reading, an admin everything". The fleet page's
// "Register a gateway" button (a link styled .btn to #/gateways?new=1,
// POST /api/gateways, admin only) is not marked needs-admin: a viewer and
// an operator are offered it, and it leads to a page with nothing to
// register with (the form there is hidden for them).
func TestFleetRegisterButtonFollowsTheRole(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h, func(o *api.Options) { o.AuthEnabled = true })
	g, _ := h.Add("fleet-roles")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	const offered = `[...document.querySelectorAll('main a, main button')].some(e =>
	  e.textContent.trim() === 'Register a gateway' && e.getClientRects().length > 0)`
	for _, c := range []struct {
		role gatewayd.Role
		want bool
	}{{gatewayd.RoleViewer, false}, {gatewayd.RoleOperator, false}, {gatewayd.RoleAdmin, true}} {
		t.Run(string(c.role), func(t *testing.T) {
			b := signedIn(t, h, base, "/", c.role)
			b.wait("the fleet", `document.querySelector('.row-name[href="#/gateways/`+g.ID.String()+`"]')`)
			assert.Equal(t, c.want, eval[bool](b, offered), "the fleet page offers 'Register a gateway' to a %s", c.role)
			assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
		})
	}
}
