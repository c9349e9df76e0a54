package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 9, whose test this is.) API.md §9: the UI "shows the fleet's states live
// (through /api/events, without reloading)". A factory's page draws each
// of its gateways with a state badge (the same stateBadge cell as
// #/gateways, data-gateway=<id>), but only #/gateways repaints those
// badges on events: on a factory's page the state drawn first stays for
// good. A gateway disconnected while the page is open still shows
// AUTHENTICATED there.
func TestFactoryPageGatewayStatesAreLive(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := h.Add("factory-live")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	b := newBrowser(t)
	b.do("open the factory", chromedp.Navigate(base+"/#/factories/"+h.Factory.String()))
	badge := `document.querySelector('section[aria-labelledby=gw-h] .badge[data-gateway="` + g.ID.String() + `"]')?.textContent`
	b.wait("its gateway, authenticated", badge+` === 'AUTHENTICATED'`)
	b.wait("the stream live", `document.querySelector('#live')?.textContent === 'Live'`)

	res, err := http.Post(base+"/api/gateways/"+g.ID.String()+"/disconnect", "", nil)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	h.WaitState(g.ID, gatewayd.StateDisconnected, 10*time.Second)
	// The factory page's badge should follow within a few seconds.
	var shown string
	testutil.Poll(func() bool { shown = eval[string](b, badge); return shown == "DISCONNECTED" }, 5*time.Second) // a miss is told below
	// The page did hear of it: the gateways list (same tab, no reload)
	// draws it DISCONNECTED at once.
	b.do("the gateways list", chromedp.Evaluate[chromedp.Void](`location.hash = '#/gateways'`))
	b.wait("the list knows", `document.querySelector('main tbody .badge[data-gateway="`+g.ID.String()+`"]')?.textContent === 'DISCONNECTED'`)
	assert.Equal(t, "DISCONNECTED", shown, "the factory page's badge of a gateway disconnected 5 s ago")
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
