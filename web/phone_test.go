package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// (Found by an audit, helper 7, whose test this is.) API.md §9: the web
// UI is "usable ... at phone width"; README: "Readable at 1280×800 and at
// 375 px". A gateway named like an asset tag, with no space or other
// break in it ("berlin_plant02_hall3_line4_compressor_drive_end_gw0042",
// 54 characters; the API takes up to 255) pushed the sensor page's
// breadcrumb and the narrowed sensor list's "Only the sensors of gateway
// …" line past the screen's edge at 360 px: the whole page scrolled
// sideways. Headings, facts and code already wrapped anywhere
// (overflow-wrap); these two did not, nor did the Delete question nor an
// organization's "New factory in …" button.
func TestPhoneWidthWithALongGatewayName(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	const name = "berlin_plant02_hall3_line4_compressor_drive_end_gw0042"
	g, sensors := addWithSensors(t, h, name, 1)
	sid := sensors[0].ID.String()

	b := newBrowser(t)
	b.do("a phone", chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile))
	b.do("open the UI", chromedp.Navigate(base+"/#/"))
	b.wait("the fleet", `document.querySelector('.row-name')`)
	var wide []string
	check := func(what string) {
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 360 {
			culprit := eval[string](b, `[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 361 && !e.closest('.table-wrap')).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')).slice(0, 3).join(' ')`)
			wide = append(wide, fmt.Sprintf("%s: %d px wide (%s)", what, w, culprit))
		}
	}
	for _, p := range []struct{ hash, ready string }{
		{"#/", `document.querySelector('.row-name')`},
		{"#/gateways", `document.querySelector('main table tbody tr')`},
		{"#/gateways/" + g.ID.String(), `document.querySelector('section[aria-labelledby=gw-h] dl')`},
		{"#/sensors", `document.querySelector('main table tbody tr a[data-gateway-name]')?.textContent === '` + name + `'`},
		{"#/sensors?gateway_id=" + g.ID.String(), `document.querySelector('.narrowed a')?.textContent === '` + name + `'`},
		{"#/sensors/" + sid, `[...document.querySelectorAll('.crumbs a')].some(a => a.textContent === '` + name + `')`},
		{"#/factories/" + h.Factory.String(), `document.querySelector('section[aria-labelledby=gw-h] tbody tr')`},
	} {
		b.do("open "+p.hash, chromedp.Evaluate[chromedp.Void](`location.hash = `+js(p.hash)))
		b.wait(p.hash, p.ready)
		check(p.hash)
	}
	// The Delete question names the gateway.
	b.do("open the gateway", chromedp.Evaluate[chromedp.Void](`location.hash = `+js("#/gateways/"+g.ID.String())))
	b.wait("its Delete", `[...document.querySelectorAll('section[aria-labelledby=del-h] button')].some(b => b.textContent === 'Delete')`)
	b.do("ask to delete it", chromedp.Click(chromedp.CSS(`section[aria-labelledby=del-h] button`)))
	b.wait("the question", `document.querySelector('.confirm-q')?.textContent.includes('`+name+`')`)
	check("the gateway's Delete question")
	// An organization's page offers "New factory in <its name>".
	resp, err := http.Post(base+"/api/organizations", "application/json", strings.NewReader(`{"name": "`+name+`"}`))
	require.NoError(t, err)
	var org struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&org))
	resp.Body.Close()
	require.Equal(t, 201, resp.StatusCode)
	b.do("open the organization", chromedp.Evaluate[chromedp.Void](`location.hash = `+js("#/organizations/"+org.ID)))
	b.wait("its New factory", `[...document.querySelectorAll('main a.btn')].some(a => a.textContent.endsWith('`+name+`'))`)
	check("#/organizations/" + org.ID)
	assert.Empty(t, wide, "pages wider than a 360 px phone (they scroll sideways)")
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
