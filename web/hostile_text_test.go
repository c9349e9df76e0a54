package web_test

// What a hostile gateway can put in an operator's browser. Sensor names,
// part numbers, reading errors and a login refusal's text, all chosen by a
// gateway, shown on every page that shows them: they must stay text (no
// element, no script), be shown as sent, and change nothing around them.
// (An audit, helper 8, whose tests these are.)

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gatewayd "github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/ctc"
	"github.com/ctcgw/gatewayd/ctc/ctctest"
	"github.com/ctcgw/gatewayd/internal/testutil"
	"github.com/ctcgw/gatewayd/store"
)

const (
	xssImg    = `<img src=x onerror="window.__pwned='img';document.title='pwned'">`
	xssScript = `<script>window.__pwned='script'</script>`
	xssSVG    = `"><svg onload="window.__pwned='svg'"></svg><a href="javascript:window.__pwned='a'">x</a>`
	xssPart   = `<iframe src="javascript:parent.__pwned='iframe'"></iframe>`
	xssRefuse = `<img src=x onerror="window.__pwned='reading'">Sensor busy`
	xssLogin  = `<b onmouseover="window.__pwned='login'">bad</b><img src=x onerror="window.__pwned='login'">`
)

// hostileGateway registers a simulated gateway whose sensors are the given
// ones, and starts it.
func hostileGateway(t *testing.T, h *actorstest.Harness, name string, sensors []ctc.Sensor, faults ctctest.Faults) (gatewayd.Gateway, *ctctest.Gateway) {
	t.Helper()
	email, pw := actorstest.Credentials(name)
	sg := h.Sim.Add(name, ctctest.Config{Email: email, Password: pw, Sensors: sensors})
	sg.SetFaults(faults)
	g, err := h.Store.CreateGateway(context.Background(), store.NewGateway{FactoryID: h.Factory, GatewayID: name, Name: name,
		URL: sg.URL(), Email: email, Password: pw})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(g.Target(pw))
	return g, sg
}

// injected is JavaScript that says what a payload managed to do in the
// page: any element a payload would have made, or its script's mark.
const injected = `(() => {
  const bad = [...document.querySelectorAll('main img, main script, main iframe, main svg, main b, main object, main embed, #toasts img, #toasts script, a[href^="javascript:"]')]
    .map(e => e.outerHTML.slice(0, 80));
  if (window.__pwned) bad.push('script ran: ' + window.__pwned);
  if (document.title === 'pwned') bad.push('title set');
  return bad;
})()`

func assertClean(t *testing.T, b *browser, where string) {
	t.Helper()
	assert.Empty(t, eval[[]string](b, injected), "%s: a payload became markup or ran", where)
}

// Every gateway-chosen string stays text on the fleet
// overview, the gateway's page, the sensors list and the sensor's page.
func TestHostileGatewayTextStaysText(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()

	sensors := []ctc.Sensor{
		{Serial: 9001, Connected: 1, PartNum: xssPart, ReadRate: 25600, Samples: 256, Name: xssImg},
		{Serial: 9002, Connected: 1, PartNum: "P-2", ReadRate: 25600, Samples: 256, Name: xssScript},
		{Serial: 9003, Connected: 1, PartNum: "P-3", ReadRate: 25600, Samples: 256, Name: xssSVG},
	}
	g, _ := hostileGateway(t, h, "hostile-a", sensors, ctctest.Faults{RefuseReadings: true, RefusalText: xssRefuse})

	// A gateway that refuses every login with markup as its reason.
	email, pw := actorstest.Credentials("hostile-b")
	gb, err := h.Store.CreateGateway(ctx, store.NewGateway{FactoryID: h.Factory, GatewayID: "hostile-b", Name: "hostile-b",
		URL: actorstest.RefusingPeer(t, xssLogin), Email: email, Password: pw})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(gb.Target(pw))

	var list []gatewayd.Sensor
	testutil.Eventually(t, func() bool {
		list, err = h.Store.GatewaySensors(ctx, g.ID)
		return err == nil && len(list) == 3
	}, 15*time.Second, "the hostile gateway's sensors stored")
	testutil.Eventually(t, func() bool {
		st, err := h.Runtime.Status(ctx, gb.ID)
		return err == nil && st.LastError != nil && strings.Contains(*st.LastError, "<img")
	}, 15*time.Second, "the refusing gateway's last_error holds its text")
	byName := map[string]uuid.UUID{}
	for _, s := range list {
		byName[s.Name] = s.ID
	}

	b := newBrowser(t)
	b.do("the fleet", chromedp.Navigate(base+"/#/"))
	b.wait("the refusing gateway's error in its row", `[...document.querySelectorAll('.row-err')].some(e => e.textContent.includes('<img src=x'))`, 30*time.Second)
	assertClean(t, b, "overview")

	b.do("the hostile gateway's page", chromedp.Evaluate[chromedp.Void](`location.hash = '#/gateways/`+g.ID.String()+`'`))
	b.wait("its sensors, named literally", `[...document.querySelectorAll('main td')].some(td => td.textContent === `+js(xssImg)+`)`)
	assert.True(t, eval[bool](b, `[...document.querySelectorAll('main td')].some(td => td.textContent === `+js(xssScript)+`)`))
	assert.True(t, eval[bool](b, `[...document.querySelectorAll('main td')].some(td => td.textContent === `+js(xssSVG)+`)`))
	assertClean(t, b, "gateway page")

	b.do("the refusing gateway's page", chromedp.Evaluate[chromedp.Void](`location.hash = '#/gateways/`+gb.ID.String()+`'`))
	b.wait("its last error, literally", `[...document.querySelectorAll('.err-text')].some(e => e.textContent.includes(`+js(xssLogin)+`))`)
	b.wait("its history's errors", `document.querySelector('.hist-err')`)
	assertClean(t, b, "refusing gateway page")

	b.do("the sensors", chromedp.Evaluate[chromedp.Void](`location.hash = '#/sensors'`))
	b.wait("the sensors named literally", `[...document.querySelectorAll('main td')].some(td => td.textContent === `+js(xssImg)+`)`)
	assertClean(t, b, "sensors list")

	id := byName[xssImg]
	require.NotEqual(t, uuid.Nil, id)
	b.do("the sensor's page", chromedp.Evaluate[chromedp.Void](`location.hash = '#/sensors/`+id.String()+`'`))
	b.wait("its part number, literally", `[...document.querySelectorAll('main dd')].some(dd => dd.textContent === `+js(xssPart)+`)`)
	// The name isolated (U+2068 … U+2069) from the text around it.
	assert.Equal(t, "\u2068"+xssImg+"\u2069 (9001)", eval[string](b, `document.querySelector('main h1').textContent`))
	assert.Equal(t, "\u2068"+xssImg+"\u2069 · sensor · gatewayd", eval[string](b, `document.title`))
	b.do("take a reading", chromedp.Click(chromedp.CSS(`#take-reading`)))
	b.wait("the refused reading's error, literally", `[...document.querySelectorAll('main td')].some(td => td.textContent === `+js(xssRefuse)+`)`)
	assertClean(t, b, "sensor page")
	// The name input holds the name as its value.
	assert.Equal(t, xssImg, eval[string](b, `document.querySelector('section[aria-labelledby=set-h] input[name=name]').value`))
	assert.Empty(t, b.problems(), "console problems (a CSP violation would be one)")

	// The API's answers that carry the same text: JSON, never sniffed, no
	// HTML context (the payloads go out unescaped: encodeJSON).
	for _, path := range []string{"/api/sensors/" + id.String(), "/api/sensors?gateway_id=" + g.ID.String(),
		"/api/gateways/" + gb.ID.String() + "/status", "/api/sensors/" + id.String() + "/readings", "/api/gateways/status"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, path)
		assert.True(t, strings.Contains(string(body), "<img") || strings.Contains(string(body), "<script"), "%s carries a payload: %s", path, body)
		assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), "%s: %s", path, resp.Header.Get("Content-Type"))
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		assert.Equal(t, "default-src 'none'; frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"), path)
	}
	// Answers that echo a path or a query: never HTML.
	for _, path := range []string{"/%3Cscript%3Ewindow.x=1%3C/script%3E", "/ui/%3Cimg%20src=x%20onerror=alert(1)%3E.html",
		"/api/sensors/%3Cimg%20src=x%3E", "/api/sensors?gateway_id=%3Cimg%20src=x%3E", "/api/nope%3Cb%3E"} {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.GreaterOrEqual(t, resp.StatusCode, 400, path)
		ct := resp.Header.Get("Content-Type")
		assert.False(t, strings.Contains(ct, "html"), "%s answered %s: %s", path, ct, body)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
	}
	// The event stream, which carries the last_error too.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", base+"/api/events?last_event_id=1", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"), resp.Header.Get("Content-Type"))
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), "event stream")
	assert.Equal(t, "default-src 'none'; frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"), "event stream")
	cancel()
	resp.Body.Close()
}

// offscreenCells lists the cells of the rows whose first cell links the given
// serials whose start is out of sight: past the table's scrolled box or
// the window's right edge.
func offscreenCells(serials ...string) string {
	return `(() => {
  const want = new Set(` + "[" + `'` + strings.Join(serials, `','`) + `'` + "]" + `);
  const out = [];
  for (const tr of document.querySelectorAll('main tbody tr')) {
    if (!want.has(tr.cells[0].textContent)) continue;
    const box = tr.closest('.table-wrap').getBoundingClientRect();
    const right = Math.min(box.right, innerWidth);
    for (const td of tr.cells) {
      const r = td.getBoundingClientRect();
      if (r.left + Math.min(r.width, 24) > right) out.push(tr.cells[0].textContent + ': ' + td.textContent.slice(0, 30));
    }
  }
  return out;
})()`
}

// README (What a hostile peer can and cannot do): a gateway "can make its
// own connection fail, and nothing more"; it names its sensors itself, up
// to 255 characters. One sensor named with 255 characters and no space
// makes the Name column of every sensor table ~3,500 px wide: in the
// fleet's sensor list and on a machine's page, the other gateways'
// sensors' Gateway, Connected, Temperature and Schedule columns were
// pushed out of sight (table cells did not wrap; .facts dd, h1 and code did).
// (Found by an audit, helper 8.)
func TestALongSensorNameHidesNoOtherColumns(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	long := strings.Repeat("W", 255)
	g, _ := hostileGateway(t, h, "long-names", []ctc.Sensor{
		{Serial: 777, Connected: 1, PartNum: "P", ReadRate: 25600, Samples: 256, Name: long},
	}, ctctest.Faults{})
	honest, _ := h.Add("honest") // serials 10001 and 10002 (ctctest.DefaultSensors)
	var all []gatewayd.Sensor
	testutil.Eventually(t, func() bool {
		a, err1 := h.Store.GatewaySensors(ctx, g.ID)
		b, err2 := h.Store.GatewaySensors(ctx, honest.ID)
		all = append(a, b...)
		return err1 == nil && err2 == nil && len(a) == 1 && len(b) == 2
	}, 15*time.Second, "both gateways' sensors stored")
	// One machine watched by sensors of both gateways.
	eq, err := h.Store.CreateEquipment(ctx, store.NewEquipment{FactoryID: g.FactoryID, Name: "press 4"})
	require.NoError(t, err)
	for _, s := range all {
		_, err := h.Store.UpdateSensor(ctx, s.ID, store.SensorPatch{EquipmentID: store.Some(&eq.ID)})
		require.NoError(t, err)
	}
	honestSerials := []string{"10001", "10002"}

	b := newBrowser(t) // 1280 × 800
	b.do("the sensors", chromedp.Navigate(base+"/#/sensors"))
	b.wait("all three listed, with their gateways' names",
		`document.querySelectorAll('main tbody tr').length === 3 && [...document.querySelectorAll('main a[data-gateway-name]')].every(a => a.textContent !== 'gateway')`)
	assert.Empty(t, eval[[]string](b, offscreenCells(honestSerials...)),
		"the sensor list: the honest gateway's sensors' cells are out of sight, pushed by another gateway's sensor name")

	b.do("the machine's page", chromedp.Evaluate[chromedp.Void](`location.hash = '#/equipment/`+eq.ID.String()+`'`))
	b.wait("its three sensors", `document.querySelectorAll('main tbody tr').length === 3`)
	assert.Empty(t, eval[[]string](b, offscreenCells(honestSerials...)),
		"the machine's page: the honest gateway's sensors' cells are out of sight, pushed by another gateway's sensor name")
}

// A sensor's name is shown with its serial in the page's heading,
// "<name> (<serial>)", in one run of text. A gateway that names a sensor
// with a bidi override (U+202E, RIGHT-TO-LEFT OVERRIDE) turned the serial
// that follows it around: sensor 12345's page read "(54321)", another
// sensor's serial. The name is the gateway's to choose; the serial shown
// beside it is not its to deface. (In a table cell, a block of its own,
// the override ends with the cell: the lists hold.) (Found by an audit,
// helper 8.)
func TestABidiOverrideInASensorNameLeavesItsSerial(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	g, _ := hostileGateway(t, h, "bidi", []ctc.Sensor{
		{Serial: 12345, Connected: 1, PartNum: "P", ReadRate: 25600, Samples: 256, Name: "Pump \u202e"},
	}, ctctest.Faults{})
	var id uuid.UUID
	testutil.Eventually(t, func() bool {
		l, err := h.Store.GatewaySensors(ctx, g.ID)
		if err == nil && len(l) == 1 {
			id = l[0].ID
		}
		return id != uuid.Nil
	}, 15*time.Second, "the sensor stored")

	b := newBrowser(t)
	b.do("the sensor's page", chromedp.Navigate(base+"/#/sensors/"+id.String()))
	b.wait("its heading", `document.querySelector('main h1')?.textContent.includes('(12345)')`)
	// Where each digit of the serial is drawn, left to right on screen.
	xs := eval[[]float64](b, `(() => {
  const n = document.querySelector('main h1').firstChild, s = n.textContent, at = s.indexOf('(12345)') + 1;
  return [0, 1, 2, 3, 4].map(k => { const r = document.createRange(); r.setStart(n, at + k); r.setEnd(n, at + k + 1); return r.getBoundingClientRect().x; });
})()`)
	require.Len(t, xs, 5)
	for k := 1; k < 5; k++ {
		assert.Greater(t, xs[k], xs[k-1], "the serial 12345 is drawn right to left (reads 54321): digit positions %v", xs)
	}

	// Held: a last_error with an override (a gateway's login refusal)
	// stays in its own box: the row's age beside it in the overview and
	// the history's next entries read left to right.
	email, pw := actorstest.Credentials("bidi-b")
	gb, err := h.Store.CreateGateway(ctx, store.NewGateway{FactoryID: h.Factory, GatewayID: "bidi-b", Name: "bidi-b",
		URL: actorstest.RefusingPeer(t, "refused \u202e"), Email: email, Password: pw})
	require.NoError(t, err)
	h.Runtime.GatewayStarted(gb.Target(pw))
	b.do("the fleet", chromedp.Evaluate[chromedp.Void](`location.hash = '#/'`))
	b.wait("the refused gateway's row, aged", `[...document.querySelectorAll('.row')].some(r => r.querySelector('.row-err').textContent.includes('\u202e') && r.querySelector('.row-since').textContent.endsWith('ago'))`)
	order := eval[bool](b, `(() => {
  const r = [...document.querySelectorAll('.row')].find(r => r.querySelector('.row-err').textContent.includes('\u202e'));
  const n = r.querySelector('.row-since').firstChild, s = n.textContent, i = s.indexOf('ago');
  const x = k => { const g = document.createRange(); g.setStart(n, i + k); g.setEnd(n, i + k + 1); return g.getBoundingClientRect().x; };
  return x(0) < x(1) && x(1) < x(2);
})()`)
	assert.True(t, order, "the overview row's age is drawn reversed by the last_error beside it")
}

// A gateway names its serials itself (int64); one past 2^53 must be shown
// as sent, not as the nearest JavaScript number (which is another serial):
// the sensor list, the gateway's page (before and after "Discover
// sensors", whose answer is drawn as it comes) and the sensor's page.
func TestBigSerialsShownAsSent(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	const big = 9007199254740993 // 2^53 + 1: JavaScript reads 9007199254740992
	g, _ := hostileGateway(t, h, "big-serials", []ctc.Sensor{
		{Serial: big, Connected: 1, PartNum: "P", ReadRate: 25600, Samples: 256, Name: "big"},
	}, ctctest.Faults{})
	var id uuid.UUID
	testutil.Eventually(t, func() bool {
		l, err := h.Store.GatewaySensors(ctx, g.ID)
		if err == nil && len(l) == 1 {
			id = l[0].ID
		}
		return id != uuid.Nil
	}, 15*time.Second, "the sensor stored")
	serialCells := `[...document.querySelectorAll('main tbody tr')].map(tr => tr.cells[0].textContent)`

	b := newBrowser(t)
	b.do("the sensors", chromedp.Navigate(base+"/#/sensors"))
	b.wait("the sensor listed", `document.querySelectorAll('main tbody tr').length === 1`)
	assert.Equal(t, []string{"9007199254740993"}, eval[[]string](b, serialCells), "sensor list")

	b.do("the gateway's page", chromedp.Evaluate[chromedp.Void](`location.hash = '#/gateways/`+g.ID.String()+`'`))
	b.wait("its sensor", `document.querySelectorAll('main section[aria-labelledby=sens-h] tbody tr').length === 1`)
	assert.Equal(t, []string{"9007199254740993"}, eval[[]string](b, serialCells), "gateway page")
	b.wait("discover offered", `!document.querySelector('#gw-discover').disabled`)
	b.do("discover", chromedp.Click(chromedp.CSS(`#gw-discover`)))
	b.wait("the discovery's toast", `[...document.querySelectorAll('#toasts p')].some(p => p.textContent.includes('found'))`)
	assert.Equal(t, []string{"9007199254740993"}, eval[[]string](b, serialCells), "gateway page after Discover sensors")

	b.do("the sensor's page", chromedp.Evaluate[chromedp.Void](`location.hash = '#/sensors/`+id.String()+`'`))
	b.wait("its heading", `document.querySelector('main h1').textContent.includes('(')`)
	assert.Equal(t, "\u2068big\u2069 (9007199254740993)", eval[string](b, `document.querySelector('main h1').textContent`))
	b.wait("its facts", `document.querySelector('section[aria-labelledby=sn-h] dd')`)
	assert.Equal(t, "9007199254740993", eval[string](b, `document.querySelector('section[aria-labelledby=sn-h] dd').textContent`), "sensor facts")
}
