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
	"github.com/ctcgw/gatewayd/store"
)

// The idea of TestSensorReadingsDoNotMoveUnderThePointer
// (web/layout_test.go, cfd5fa1) on the other pages: a clickable element
// drawn before an answer that adds (or removes) content above it moves
// when that answer comes, and a click meant for it lands on whatever moved
// there.

// topOf is the y of the first element matching sel, or -1.
func topOf(b *browser, sel string) float64 {
	b.t.Helper()
	return eval[float64](b, `document.querySelector(`+js(sel)+`)?.getBoundingClientRect().top ?? -1`)
}

// twoFrames waits until what is in the DOM has been laid out and painted.
func twoFrames(b *browser) {
	b.t.Helper()
	eval[bool](b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
}

// trackTop records, every frame from now on, the y of the first element
// matching sel whenever there is one; tracked stops and gives what it
// saw. A page that waits to draw the element records nothing until it
// is drawn where it stays.
func trackTop(b *browser, sel string) {
	b.t.Helper()
	eval[bool](b, `(() => {
	  const tops = window.gwdTops = [];
	  const frame = () => {
	    const e = document.querySelector(`+js(sel)+`);
	    if (e) tops.push(e.getBoundingClientRect().top);
	    if (window.gwdTops === tops) requestAnimationFrame(frame);
	  };
	  requestAnimationFrame(frame);
	  return true;
	})()`)
}

func tracked(b *browser) []float64 {
	b.t.Helper()
	return eval[[]float64](b, `(() => { const t = window.gwdTops; window.gwdTops = null; return t; })()`)
}

// assertStayed asserts that every y recorded is the element's final one
// (within delta px).
func assertStayed(t *testing.T, tops []float64, final, delta float64, what string) {
	t.Helper()
	for _, y := range tops {
		if !assert.InDelta(t, final, y, delta, "%s moved after it was drawn (from %.0f px to %.0f px)", what, y, final) {
			return
		}
	}
}

// (Found by an audit, helper 2, whose test this is.) A gateway's page
// drew its sensors (links to each sensor's page) as soon as their answer
// came; the Status panel above them is empty until the status answer
// comes, and then grows by its nine facts: the sensors moved down under
// the pointer. The status answer is held until the sensors' answer is in
// (and drawn, where the page does not wait), as on a box where it comes
// last; the first link's place is recorded every frame.
func TestGatewaySensorsDoNotMoveUnderThePointer(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, sensors := addWithSensors(t, h, "steady-gw", 2)
	link := `main a[href="#/sensors/` + sensors[0].ID.String() + `"]`

	b := newBrowser(t)
	release := b.holdAnswer("the gateway's status", "*/api/gateways/"+g.ID.String()+"/status",
		chromedp.Navigate(base+"/#/gateways/"+g.ID.String()))
	trackTop(b, link)
	b.wait("the sensors answered", `performance.getEntriesByType('resource').some(e => e.name.includes('/sensors?limit=') && e.responseEnd > 0)`)
	twoFrames(b)
	release()
	b.wait("the status and the sensors drawn", `document.querySelector('.status-facts dl')?.dataset.state === 'AUTHENTICATED' && !!document.querySelector(`+js(link)+`)`)
	twoFrames(b)
	final := topOf(b, link)
	assertStayed(t, tracked(b), final, 0, "the gateway's first sensor link")
}

// (Found by an audit, helper 2, whose test this is.) A viewer's lists:
// until GET /api/whoami answered, "everything shows" (app.js), so the
// "New …" button above a list was there when the list was drawn, and was
// hidden (display:none) once the role was known: the list moved up under
// the pointer. whoami's answer is held until the list is drawn, or the
// page is live without it; the first row's link's place is recorded
// every frame.
func TestViewerListsDoNotMoveWhenTheRoleArrives(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h, func(o *api.Options) { o.AuthEnabled = true })
	g, sensors := addWithSensors(t, h, "viewer-list", 1)
	eq, err := h.Store.CreateEquipment(context.Background(), store.NewEquipment{FactoryID: h.Factory, Name: "press"})
	require.NoError(t, err)
	b := signedIn(t, h, base, "/", gatewayd.RoleViewer)
	for i, c := range []struct{ route, link string }{
		{"/gateways", `main a[href="#/gateways/` + g.ID.String() + `"]`},
		{"/factories", `main a[href="#/factories/` + h.Factory.String() + `"]`},
		{"/", `main a.row-name[href="#/gateways/` + g.ID.String() + `"]`},
		{"/factories/" + h.Factory.String(), `main a[href="#/equipment/` + eq.ID.String() + `"]`},
		{"/gateways/" + g.ID.String(), `main a[href="#/sensors/` + sensors[0].ID.String() + `"]`},
	} {
		t.Run(c.route, func(t *testing.T) {
			b.t = t
			release := b.holdAnswer("whoami", "*/api/whoami",
				chromedp.Navigate(base+"/?load="+string(rune('a'+i))+"#"+c.route))
			trackTop(b, c.link)
			b.wait("the list drawn, or the page live without it", `!!document.querySelector(`+js(c.link)+`) || `+liveJS)
			twoFrames(b)
			release()
			b.wait("the role known and the list drawn", `document.documentElement.dataset.role === 'viewer' && !!document.querySelector(`+js(c.link)+`)`)
			twoFrames(b)
			final := topOf(b, c.link)
			assertStayed(t, tracked(b), final, 3, c.route+": the first row's link")
		})
	}
}

// (Found by an audit, helper 2, whose test this is.) The same page's
// "Recent state changes" are replayed by a stream of its own, which
// answers after the sensors are drawn; a gateway with a dozen changes in
// the server's ring grew that panel (up to 22rem) past the Status panel
// beside it, and the sensors below moved down under the pointer. The
// replay's stream is held until the sensors are drawn.
func TestGatewayHistoryReplayDoesNotMoveTheSensors(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, sensors := addWithSensors(t, h, "replayed", 1)
	id := g.ID.String()
	for i := 0; i < 4; i++ {
		postAPI(t, base, "/gateways/"+id+"/disconnect")
		h.WaitState(g.ID, gatewayd.StateDisconnected, 10*time.Second)
		postAPI(t, base, "/gateways/"+id+"/connect")
		h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	}
	link := `main a[href="#/sensors/` + sensors[0].ID.String() + `"]`

	b := newBrowser(t)
	release := b.holdAnswer("the history's replay", "*/api/events?*gateway_id=*",
		chromedp.Navigate(base+"/#/gateways/"+id))
	b.wait("the status and the sensors drawn", `document.querySelector('.status-facts dl')?.dataset.state === 'AUTHENTICATED' && !!document.querySelector(`+js(link)+`)`)
	twoFrames(b)
	first := topOf(b, link)
	release()
	b.wait("the history replayed", `document.querySelectorAll('.history li').length >= 12`)
	twoFrames(b)
	final := topOf(b, link)
	assert.Equal(t, first, final, "the gateway's sensor link moved when the history was replayed (from %.0f px to %.0f px)", first, final)
}
