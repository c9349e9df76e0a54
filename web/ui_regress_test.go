package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/ctcgw/gatewayd/store"
	"github.com/stretchr/testify/require"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/api"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// The sign-in dialog must not be dismissed with Escape (api.js: "Escape
// must not leave requests hanging: the dialog stays until a token is
// given"). Chromium lets a cancel event be prevented only after a user
// activation, and a key press of Escape is none: two presses close the
// dialog anyway, and every request waiting for a token hangs, with no way
// back but a reload. (Found by an audit, helper 7, whose tests these
// are.)
func TestUISignInSurvivesEscape(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h, func(o *api.Options) { o.AuthEnabled = true })

	b := newBrowser(t)
	b.do("open the UI", chromedp.Navigate(base+"/"))
	b.wait("the sign-in dialog", `document.querySelector('#signin')?.open`)
	b.do("Escape, twice", chromedp.KeyEvent(kb.Escape), chromedp.KeyEvent(kb.Escape))
	// Whatever the browser did with the key presses, a way to sign in must remain.
	b.do("go to the organizations", chromedp.Navigate(base+"/#/organizations"))
	b.wait("the sign-in dialog, still or again", `document.querySelector('#signin')?.open`, 5*time.Second)
}

// #/sensors names each sensor's gateway. Opened directly (a reload, a
// bookmark), the list arrives before the fleet's statuses, from which the
// column takes the name, and is never drawn again: every row says
// "gateway".
func TestUISensorListNamesGateways(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	h.AddAuthenticated("line", 1)
	testutil.Eventually(t, func() bool {
		res, err := http.Get(base + "/api/sensors")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var page struct{ Data []any }
		return json.NewDecoder(res.Body).Decode(&page) == nil && len(page.Data) == 2
	}, 10*time.Second, "the gateway's sensors discovered")

	b := newBrowser(t)
	b.do("open the sensors", chromedp.Navigate(base+"/#/sensors"))
	b.wait("the sensors listed", `document.querySelectorAll('main tbody tr').length === 2`)
	b.wait("the gateway's name in each row",
		`[...document.querySelectorAll('main tbody tr')].every(r => r.cells[2].textContent === 'line-0')`, 5*time.Second)
}

// The fleet list is virtual, but a keyboard user must still reach every
// gateway with Tab, in order (README: "Keyboard: real links and buttons").
// The rows are reused as the page scrolls to the focused link, so the
// focused element shows another gateway: Tab skips gateways, more and
// more, and leaves the list long before its end.
func TestUIFleetTabReachesEveryGateway(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	const n = 80
	for i := range n {
		h.Add(fmt.Sprintf("gw-%02d", i))
	}
	b := newBrowser(t)
	b.do("open the overview", chromedp.Navigate(base+"/"))
	b.wait("the fleet", fmt.Sprintf(`document.querySelector('#shown')?.textContent === 'Showing %d of %d gateways'`, n, n))
	b.do("focus the search", chromedp.Focus(chromedp.CSS(`#f-q`)))
	var got []string
	for range n + 1 {
		b.do("tab", chromedp.KeyEvent(kb.Tab))
		eval[bool](b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
		if !eval[bool](b, `document.activeElement?.classList.contains('row-name')`) {
			break
		}
		got = append(got, eval[string](b, `document.activeElement.textContent`))
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("gw-%02d", i)
	}
	assert.Equal(t, want, got, "Tab visits every gateway of the list, in order")
}

// Deleting an organization deletes its factories: the factory lists the
// page keeps (a create form's select, a filter) drop them at once. They
// stayed until a reload, and creating in one was refused 422 (found by an
// audit, helper 7).
func TestUIDeletedOrganizationsFactoriesLeaveTheLists(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	org, err := h.Store.CreateOrganization(ctx, "Doomed Org", nil)
	require.NoError(t, err)
	_, err = h.Store.CreateFactory(ctx, store.NewFactory{OrganizationID: org.ID, Name: "Doomed Factory"})
	require.NoError(t, err)
	hasDoomed := `[...document.querySelectorAll('main select option')].some(o => o.textContent === 'Doomed Factory')`

	b := newBrowser(t)
	b.do("open the equipment form", chromedp.Navigate(base+"/#/equipment?new=1"))
	b.wait("the doomed factory offered", hasDoomed)
	b.do("open the organization", chromedp.Evaluate[chromedp.Void](`location.hash = '#/organizations/`+org.ID.String()+`'`))
	b.wait("its page", `document.querySelector('main h1')?.textContent === 'Doomed Org' && document.querySelector('.panel-danger .btn-danger')`)
	b.do("delete", chromedp.Click(chromedp.CSS(`.panel-danger .btn-danger`)))
	b.do("confirm", chromedp.Click(chromedp.CSS(`.panel-danger .confirm .btn-danger`)))
	b.wait("the organization list", `location.hash === '#/organizations'`)
	b.do("the equipment form again", chromedp.Evaluate[chromedp.Void](`location.hash = '#/equipment?new=1'`))
	b.wait("the form's factories", `document.querySelectorAll('main select option').length > 0`)
	assert.False(t, eval[bool](b, hasDoomed), "a deleted factory is still offered")
}

// A factory's page shows at most 100 of its gateways and machines; past
// that it says how many it left out and links to the list that pages
// through all of them (it said nothing, and the 101st was out of reach
// from the factory).
func TestUIDetailTablesSayWhatTheyLeaveOut(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	for i := range 101 {
		_, err := h.Store.CreateEquipment(ctx, store.NewEquipment{FactoryID: h.Factory, Name: fmt.Sprintf("pump %03d", i)})
		require.NoError(t, err)
	}
	h.Add("only-one")

	b := newBrowser(t)
	b.do("open the factory", chromedp.Navigate(base+"/#/factories/"+h.Factory.String()))
	b.wait("its equipment", `document.querySelectorAll('section[aria-labelledby=eq-h] tbody tr').length === 100`)
	assert.Equal(t, "Showing 100 of 101 machines: all of them",
		eval[string](b, `document.querySelector('section[aria-labelledby=eq-h] .more')?.textContent || ''`))
	assert.False(t, eval[bool](b, `!!document.querySelector('section[aria-labelledby=gw-h] .more')`),
		"all of one gateway shown: nothing left out")
	b.do("all of them", chromedp.Click(chromedp.CSS(`section[aria-labelledby=eq-h] .more a`)))
	b.wait("the equipment list of this factory", `location.hash === '#/equipment?factory_id=`+h.Factory.String()+`' && document.querySelectorAll('main tbody tr').length === 20`)
	b.wait("paged", `[...document.querySelectorAll('main button')].some(x => x.textContent === 'Next →' && !x.disabled)`)
}

// A status answer that set out before a state change the event stream
// has shown since does not put the older state back. A connect publishes
// gateway.updated just before its state changes, the fleet re-reads that
// gateway's status, and an answer arriving after the stream's newer
// states made a badge say CONNECTING under a gateway AUTHENTICATED (a CI
// run). The answer is held here until the gateway is AUTHENTICATED.
func TestUIFleetKeepsStatesNewerThanALateStatus(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, sg := h.Add("late-status")
	id := g.ID.String()
	b := newBrowser(t)
	b.do("open the fleet", chromedp.Navigate(base+"/"))
	badge := `document.querySelector('.row-name[href="#/gateways/` + id + `"]')?.parentElement.querySelector('.badge')?.textContent`
	b.wait("AUTHENTICATED", badge+` === 'AUTHENTICATED'`)
	resp, err := http.Post(base+"/api/gateways/"+id+"/disconnect", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	b.wait("DISCONNECTED", badge+` === 'DISCONNECTED'`)

	// The connect's own status answer, made while the login hangs, held.
	sg.SetFaults(ctctest.Faults{IgnoreLogins: true})
	release := b.holdAnswer("the status the connect's gateway.updated asks for", "*/api/gateways/"+id+"/status",
		chromedp.Evaluate[chromedp.Void](`fetch('/api/gateways/`+id+`/connect', {method: 'POST'})`))
	sg.SetFaults(ctctest.Faults{})
	b.wait("AUTHENTICATED again, from the stream", badge+` === 'AUTHENTICATED'`, 30*time.Second)
	release()
	b.wait("the held answer read", `performance.getEntriesByType('resource').some(e => e.name.endsWith('/api/gateways/`+id+`/status') && e.responseEnd > 0)`)
	b.do("two frames drawn", chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise))
	assert.Equal(t, "AUTHENTICATED", eval[string](b, badge), "the older state came back with the late answer")
}
