package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/web"
)

// TestUI drives the web UI in headless Chromium against the real app, the
// actor runtime and the gateway simulator: everything is created through
// the forms, and what the simulator does shows up without a reload.
func TestUI(t *testing.T) {
	cfg := actorstest.FastConfig()
	// Long enough a backoff that BACKOFF is on screen for many frames.
	cfg.BackoffInitial, cfg.BackoffMax = 500*time.Millisecond, time.Second
	h := harness(t, cfg)
	base := serve(t, h)

	// The page and the API each carry their own policy.
	for path, csp := range map[string]string{"/": web.CSP, "/ui/js/app.js": web.CSP,
		"/api/health": "default-src 'none'; frame-ancestors 'none'"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.Equal(t, csp, resp.Header.Get("Content-Security-Policy"), path)
	}

	b := newBrowser(t)
	b.do("open the overview", chromedp.Navigate(base+"/"))
	b.wait("the empty fleet", `document.querySelector('#shown')?.textContent === 'Showing 0 of 0 gateways'`)
	// A mark that a reload would wipe out: it must survive the whole run.
	eval[chromedp.Void](b, `window.__e2e = 'no reload'`)

	// Keyboard: the first Tab reaches the skip link, Enter moves to the content.
	b.do("tab to the skip link", chromedp.KeyEvent("\t"))
	b.wait("the skip link focused", `document.activeElement?.classList.contains('skip')`)
	b.do("follow the skip link", chromedp.KeyEvent("\r"))
	b.wait("the content focused", `document.activeElement?.id === 'main'`)

	// An organization, through its form.
	b.do("open the organizations", chromedp.Click(chromedp.CSS(`.nav a[href="#/organizations"]`)),
		chromedp.Click(chromedp.CSS(`details.create > summary`)),
		chromedp.SendKeys(chromedp.CSS(`details.create [name=name]`), "Acme Works"),
		chromedp.Click(chromedp.CSS(`details.create button[type=submit]`)))
	b.wait("the new organization's page", `document.querySelector('main h1')?.textContent === 'Acme Works'`)

	// A factory form with mistakes: the API's words appear next to the fields.
	b.do("open the factory form", chromedp.Click(chromedp.CSS(`a[href^="#/factories?organization_id="]`)))
	b.wait("the organization chosen", `document.querySelector('details.create [name=organization_id]')?.value !== ''`)
	b.do("submit a bad factory", chromedp.SendKeys(chromedp.CSS(`details.create [name=timezone]`), "Mars/Olympus"),
		chromedp.Click(chromedp.CSS(`details.create button[type=submit]`)))
	b.wait("the field errors", `document.querySelector('[data-field=timezone] .field-error:not([hidden])')`)
	assert.Equal(t, "is required", eval[string](b, `document.querySelector('[data-field=name] .field-error').textContent`))
	assert.Equal(t, "must be an IANA time zone name such as Europe/Berlin",
		eval[string](b, `document.querySelector('[data-field=timezone] .field-error').textContent`))
	assert.Equal(t, "true", eval[string](b, `document.querySelector('details.create [name=name]').getAttribute('aria-invalid')`))
	assert.True(t, eval[bool](b, `document.activeElement === document.querySelector('details.create [name=name]')`),
		"focus moves to the first field in error")
	b.shot("factory-form-errors")
	b.do("correct the factory", chromedp.SendKeys(chromedp.CSS(`details.create [name=name]`), "Plant North"),
		chromedp.SetValue(chromedp.CSS(`details.create [name=timezone]`), "Europe/Berlin"),
		chromedp.Click(chromedp.CSS(`details.create button[type=submit]`)))
	b.wait("the new factory's page", `document.querySelector('main h1')?.textContent === 'Plant North'`)
	factoryID := strings.TrimPrefix(eval[string](b, `location.hash`), "#/factories/")

	// Equipment in it.
	b.do("open the equipment form", chromedp.Click(chromedp.CSS(`a[href^="#/equipment?factory_id="]`)))
	b.wait("the factory chosen", `document.querySelector('details.create [name=factory_id]')?.value === `+js(factoryID))
	b.do("create equipment", chromedp.SendKeys(chromedp.CSS(`details.create [name=name]`), "Pump A"),
		chromedp.SendKeys(chromedp.CSS(`details.create [name=kind]`), "pump"),
		chromedp.Click(chromedp.CSS(`details.create button[type=submit]`)))
	b.wait("the new equipment's page", `document.querySelector('main h1')?.textContent === 'Pump A'`)

	// A gateway whose simulator ignores logins for now.
	email, password := "line1@example.com", "pw-line-1"
	sg := h.Sim.Add("ui-gw-1", ctctest.Config{Email: email, Password: password})
	sg.SetFaults(ctctest.Faults{IgnoreLogins: true})
	b.do("open the gateway form", chromedp.Evaluate[chromedp.Void](`location.hash = '#/factories/`+factoryID+`'`))
	b.wait("the factory page", `document.querySelector('a[href^="#/gateways?factory_id="]')`)
	b.do("register the gateway", chromedp.Click(chromedp.CSS(`a[href^="#/gateways?factory_id="]`)))
	b.wait("the factory chosen", `document.querySelector('details.create [name=factory_id]')?.value === `+js(factoryID))
	for field, v := range map[string]string{"gateway_id": "ui-gw-1", "name": "Line 1", "url": sg.URL(), "email": email, "password": password} {
		b.do("type "+field, chromedp.SendKeys(chromedp.CSS(`details.create [name=`+field+`]`), v))
	}
	b.do("submit the gateway", chromedp.Click(chromedp.CSS(`details.create button[type=submit]`)))
	b.wait("the gateway's page", `document.querySelector('main h1')?.textContent === 'Line 1'`)
	gwID := strings.TrimPrefix(eval[string](b, `location.hash`), "#/gateways/")
	require.Len(t, gwID, 36)

	// The overview shows it, not authenticated; the simulator relents and
	// its badge turns AUTHENTICATED in place.
	b.do("back to the fleet", chromedp.Click(chromedp.CSS(`.nav a[href="#/"]`)))
	eval[chromedp.Void](b, `window.__row = () => document.querySelector('.row-name[href="#/gateways/`+gwID+`"]')?.parentElement.querySelector('.badge')?.textContent;
		window.__seen = [];
		(function rec() { const s = __row(); if (s && s !== __seen[__seen.length - 1]) __seen.push(s); requestAnimationFrame(rec); })();`)
	b.wait("the gateway in the list", `['CONNECTING', 'CONNECTED', 'BACKOFF'].includes(__row())`)
	sg.SetFaults(ctctest.Faults{})
	b.wait("its badge AUTHENTICATED", `__row() === 'AUTHENTICATED'`)
	t.Logf("overview badge while logins were ignored, then allowed: %v", eval[[]string](b, `__seen`))
	b.wait("the counts", `document.querySelector('.count[data-state=AUTHENTICATED] .count-n').textContent === '1'`)

	// Dropped by the simulator: BACKOFF, then AUTHENTICATED again.
	eval[chromedp.Void](b, `window.__seen = []`)
	logins := sg.Stats().Logins
	sg.Drop(websocket.CloseGoingAway)
	b.wait("BACKOFF then AUTHENTICATED", `__seen.includes('BACKOFF') && __row() === 'AUTHENTICATED' && __seen.lastIndexOf('AUTHENTICATED') > __seen.indexOf('BACKOFF')`)
	seen := eval[[]string](b, `__seen`)
	t.Logf("overview badge after the drop: %v", seen)
	assert.Greater(t, sg.Stats().Logins, logins)
	assert.Equal(t, "no reload", eval[string](b, `window.__e2e`), "the page was never reloaded")

	// Filters: by state (the count buttons) and by factory.
	b.do("only BACKOFF", chromedp.Click(chromedp.CSS(`.count[data-state=BACKOFF]`)))
	b.wait("nothing in BACKOFF", `document.querySelector('.empty:not([hidden])')?.textContent === 'No gateway matches these filters.'`)
	b.do("all states", chromedp.Click(chromedp.CSS(`.count[data-state=BACKOFF]`)))
	b.wait("the row again", `__row() === 'AUTHENTICATED'`)
	b.do("the harness's factory", chromedp.SetValue(chromedp.CSS(`#f-factory`), h.Factory.String()),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-factory').dispatchEvent(new Event('change'))`))
	b.wait("not in that factory", `!__row() && document.querySelector('#shown').textContent === 'Showing 0 of 0 gateways'`)
	b.do("Plant North", chromedp.SetValue(chromedp.CSS(`#f-factory`), factoryID),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-factory').dispatchEvent(new Event('change'))`))
	b.wait("in Plant North", `__row() === 'AUTHENTICATED' && document.querySelector('#shown').textContent === 'Showing 1 of 1 gateways'`)
	b.shot("overview")

	// The gateway's page: live status, the drop in its recent changes, its
	// sensors (discovered after login), disconnect and connect.
	b.do("open the gateway", chromedp.Click(chromedp.CSS(`.row-name[href="#/gateways/`+gwID+`"]`)))
	b.wait("its status", `document.querySelector('.status-facts dl')?.dataset.state === 'AUTHENTICATED'`)
	b.wait("the drop in its history", `[...document.querySelectorAll('.history .badge')].some(e => e.textContent === 'BACKOFF')`)
	b.wait("its two sensors", `document.querySelectorAll('section[aria-labelledby=sens-h] tbody tr').length === 2`)
	b.do("disconnect", chromedp.Click(chromedp.CSS(`#gw-disconnect`)))
	b.wait("DISCONNECTED", `document.querySelector('.status-facts dl')?.dataset.state === 'DISCONNECTED'`)
	// The connect's answer (the state when it was sent) is held until the
	// event stream has shown AUTHENTICATED: arriving late, it must not put
	// the older state back.
	release := b.holdAnswer("connect", "*/api/gateways/"+gwID+"/connect", chromedp.Click(chromedp.CSS(`#gw-connect`)))
	// The newest change (the list's first item) ends in AUTHENTICATED. Its
	// last badge, not a badge that is its last child: an item whose event
	// carries last_error ends with that text.
	b.wait("AUTHENTICATED again", `document.querySelector('.status-facts dl')?.dataset.state === 'AUTHENTICATED' && [...(document.querySelector('.history li')?.querySelectorAll('.badge') ?? [])].pop()?.textContent === 'AUTHENTICATED'`)
	release()
	b.wait("the connect's answer handled", `[...document.querySelectorAll('.toast')].some(t => t.textContent === 'Connecting')`)
	assert.Equal(t, "AUTHENTICATED", eval[string](b, `document.querySelector('.status-facts dl').dataset.state`), "a late answer kept the newer state")
	b.shot("gateway", true)
	// A refresh of the same sensors updates the table in place: the link
	// a user is about to click (or has focused) is still the same element.
	eval[chromedp.Void](b, `window.sensorLink = document.querySelector('section[aria-labelledby=sens-h] tbody a')`)
	// The button is disabled unless the page's last status says
	// AUTHENTICATED; a click on it then does nothing.
	b.wait("discovery possible", `!document.querySelector('#gw-discover').disabled`)
	b.do("discover sensors", chromedp.Click(chromedp.CSS(`#gw-discover`)))
	b.wait("discovered", `[...document.querySelectorAll('.toast')].some(t => t.textContent === '2 sensors found')`)
	assert.True(t, eval[bool](b, `window.sensorLink.isConnected`), "the sensor link survived the refresh")

	// A sensor: assign the equipment, schedule readings, take one, plot it.
	b.do("open a sensor", chromedp.Click(chromedp.CSS(`section[aria-labelledby=sens-h] tbody a`)))
	b.wait("the sensor page", `document.querySelector('main h1')?.textContent.endsWith('(10001)')`)
	b.wait("the equipment to choose", `[...(document.querySelector('section[aria-labelledby=set-h] [name=equipment_id]')?.options || [])].some(o => o.text === 'Pump A')`)
	eval[chromedp.Void](b, `const s = document.querySelector('section[aria-labelledby=set-h] [name=equipment_id]');
		s.value = [...s.options].find(o => o.text === 'Pump A').value;`)
	b.do("schedule readings", chromedp.SendKeys(chromedp.CSS(`section[aria-labelledby=set-h] [name=reading_interval]`), "15m"),
		chromedp.Click(chromedp.CSS(`section[aria-labelledby=set-h] button[type=submit]`)))
	b.wait("the settings saved", `[...document.querySelectorAll('.facts dd')].some(d => d.textContent === 'every 15m0s') && [...document.querySelectorAll('.facts dd a')].some(a => a.textContent === 'Pump A')`)
	// The reading's answer (QUEUED) is held until the reading is listed
	// COMPLETE: arriving late, it must still get the reading plotted.
	sensorID := strings.TrimPrefix(eval[string](b, `location.hash.split('?')[0]`), "#/sensors/")
	release = b.holdAnswer("take a reading", "*/api/sensors/"+sensorID+"/readings", chromedp.Click(chromedp.CSS(`#take-reading`)))
	b.wait("the reading listed COMPLETE", `[...document.querySelectorAll('table.readings .badge')].some(e => e.textContent === 'COMPLETE')`, 20*time.Second)
	release()
	drawn := `(() => { const c = document.querySelector('.plots .chart canvas'); if (!c || !c.width) return false;
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
		for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n > 500; })()`
	b.wait("the waveform plotted", `document.querySelector('.plots')?.dataset.drawn === 'x' && `+drawn, 20*time.Second)
	assert.Equal(t, 2, eval[int](b, `document.querySelectorAll('.plots canvas').length`), "waveform and spectrum")
	assert.Equal(t, "8,192", eval[string](b, `document.querySelector('table.summary tbody td').textContent`))
	b.do("the Y axis", chromedp.Click(chromedp.CSS(`fieldset.axes input[value=y]`)))
	b.wait("the Y axis plotted", `document.querySelector('.plots')?.dataset.drawn === 'y' && `+drawn)
	b.shot("sensor", true)

	// Every list, with what was made.
	for _, kind := range []string{"organizations", "factories", "equipment", "gateways", "sensors"} {
		b.do("open "+kind, chromedp.Click(chromedp.CSS(`.nav a[href="#/`+kind+`"]`)))
		b.wait(kind+" listed", `document.querySelector('main h1')?.textContent.toLowerCase() === '`+kind+`' && document.querySelector('main table tbody tr')`)
		b.shot(kind)
	}

	// The gateway list's state column is live too: a disconnect repaints
	// its badge in place.
	b.do("open the gateway list", chromedp.Evaluate[chromedp.Void](`location.hash = '#/gateways'`))
	listBadge := `document.querySelector('main table .badge[data-gateway="` + gwID + `"]')?.textContent`
	b.wait("AUTHENTICATED in the list", listBadge+` === 'AUTHENTICATED'`)
	for _, step := range []struct{ op, state string }{{"disconnect", "DISCONNECTED"}, {"connect", "AUTHENTICATED"}} {
		resp, err := http.Post(base+"/api/gateways/"+gwID+"/"+step.op, "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 202, resp.StatusCode, step.op)
		b.wait(step.state+" in the list, in place", listBadge+` === '`+step.state+`'`)
	}

	// Phone width: nothing wider than the screen, and every page's link
	// in sight (the nav wraps instead of scrolling sideways).
	b.do("a phone", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	for name, hash := range map[string]string{"overview-phone": "#/", "gateway-phone": "#/gateways/" + gwID} {
		b.do("open "+name, chromedp.Evaluate[chromedp.Void](`location.hash = '`+hash+`'`))
		b.wait(name, `document.querySelector('.row .badge, .status-facts dl')`)
		assert.LessOrEqual(t, eval[int](b, `document.documentElement.scrollWidth`), 375, name)
		assert.Equal(t, 0, eval[int](b, `[...document.querySelectorAll('.nav a')].filter(a => a.getBoundingClientRect().right > innerWidth).length`),
			"%s: nav links past the edge", name)
		b.shot(name)
	}
	b.do("a desktop", chromedp.EmulateViewport(1280, 800))

	// Delete the gateway: it leaves the fleet.
	b.do("open the gateway", chromedp.Evaluate[chromedp.Void](`location.hash = '#/gateways/`+gwID+`'`))
	b.wait("its page", `document.querySelector('main h1')?.textContent === 'Line 1' && document.querySelector('.panel-danger .btn-danger')`)
	b.do("delete", chromedp.Click(chromedp.CSS(`.panel-danger .btn-danger`)))
	b.do("confirm", chromedp.Click(chromedp.CSS(`.panel-danger .confirm .btn-danger`)))
	b.wait("the gateway list", `location.hash === '#/gateways'`)
	b.do("the fleet", chromedp.Click(chromedp.CSS(`.nav a[href="#/"]`)))
	b.wait("gone from the fleet", `!__row() && document.querySelector('#shown')?.textContent.startsWith('Showing 0 of 0')`)

	assert.Equal(t, "no reload", eval[string](b, `window.__e2e`), "the page was never reloaded")
	assert.Empty(t, b.problems(), "console errors, exceptions or CSP violations")
}
