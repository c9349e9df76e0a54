package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 7, whose test this is.) Mission: "bad input
// gets a clear error and loses nothing"; README Web UI: "what it [the API]
// says about a field (details) appears next to that field". A sensor's
// page rebuilt its Settings form from scratch on every sensor.updated
// event, and a gateway publishes one for each NOT_DYN_TEMP (every 30 s per
// sensor from ctcsim, periodically from a real gateway). Whatever the
// operator had typed in the form, and the API's field error shown under
// it, vanished while they were editing; the focused field lost the
// keyboard's focus.
func TestSensorSettingsKeepWhatIsTypedAcrossATemperature(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()
	g, sg := h.Add("typed")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)
	var sensorID string
	var serial int64
	testutil.Eventually(t, func() bool {
		list, err := h.Store.GatewaySensors(ctx, g.ID)
		if err == nil && len(list) > 0 {
			sensorID, serial = list[0].ID.String(), list[0].Serial
		}
		return sensorID != ""
	}, 10*time.Second, "the gateway's sensors")

	b := newBrowser(t)
	b.do("open the sensor", chromedp.Navigate(base+"/#/sensors/"+sensorID))
	field := `document.querySelector('section[aria-labelledby=set-h] [name=reading_interval]')`
	b.wait("its settings", field)
	// A bad interval: the API refuses it next to the field.
	b.do("type a bad interval", chromedp.SendKeys(chromedp.CSS(`section[aria-labelledby=set-h] [name=reading_interval]`), "5s"),
		chromedp.Click(chromedp.CSS(`section[aria-labelledby=set-h] button[type=submit]`)))
	b.wait("the field error", `document.querySelector('section[aria-labelledby=set-h] [data-field=reading_interval] .field-error:not([hidden])')`)
	// The operator goes on typing a name.
	b.do("type a name", chromedp.Evaluate[chromedp.Void](`document.querySelector('section[aria-labelledby=set-h] [name=name]').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`section[aria-labelledby=set-h] [name=name]`), "Bearing NDE"))
	require.Equal(t, "Bearing NDE", eval[string](b, `document.querySelector('section[aria-labelledby=set-h] [name=name]').value`))

	// The gateway reports a temperature, as it does every few seconds.
	require.Positive(t, sg.PushTemperature(serial, 31.5))
	b.wait("the temperature shown", `[...document.querySelectorAll('section[aria-labelledby=sn-h] dd')].some(d => d.textContent.startsWith('31.5'))`)

	assert.Equal(t, "Bearing NDE", eval[string](b, `document.querySelector('section[aria-labelledby=set-h] [name=name]').value`),
		"the name being typed")
	assert.Equal(t, "5s", eval[string](b, field+`.value`), "the interval that was refused")
	assert.True(t, eval[bool](b, `!!document.querySelector('section[aria-labelledby=set-h] [data-field=reading_interval] .field-error:not([hidden])')`),
		"the API's error next to the field")
	assert.Equal(t, "name", eval[string](b, `document.activeElement?.name || document.activeElement?.tagName`), "the focused field")
}

// (Found by an audit, helper 7, whose test this is.) The same on a
// gateway's page: its Edit form was rebuilt on every gateway.updated,
// which another client's connect or disconnect (an operator elsewhere)
// publishes. An admin half-way through changing the gateway's URL, login
// and password lost all of it. A field they did not touch shows what
// another client stored meanwhile.
func TestGatewayEditKeepsWhatIsTypedAcrossAnotherClientsDisconnect(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, _ := h.Add("typed-gw")
	h.WaitState(g.ID, gatewayd.StateAuthenticated, 10*time.Second)

	b := newBrowser(t)
	b.do("open the gateway", chromedp.Navigate(base+"/#/gateways/"+g.ID.String()))
	sel := func(name string) string { return `section[aria-labelledby=edit-h] [name=` + name + `]` }
	b.wait("its edit form", `document.querySelector('`+sel("url")+`')`)
	b.do("start typing a new URL", chromedp.Evaluate[chromedp.Void](`document.querySelector('`+sel("url")+`').value = ''`),
		chromedp.SendKeys(chromedp.CSS(sel("url")), "ws://10.0.9.9:8080"),
		chromedp.SendKeys(chromedp.CSS(sel("password")), "new-secret"))

	// Someone else disconnects it (API: gateway.updated, then the state).
	resp, err := http.Post(base+"/api/gateways/"+g.ID.String()+"/disconnect", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 202, resp.StatusCode)
	b.wait("DISCONNECTED shown", `document.querySelector('.status-facts dl')?.dataset.state === 'DISCONNECTED'`)
	// gateway.updated's re-read and redraw are asynchronous: watch the
	// typed values for 3 s (a window in which nothing may happen to them).
	typed := `document.querySelector('` + sel("url") + `')?.value === 'ws://10.0.9.9:8080' && document.querySelector('` + sel("password") + `')?.value === 'new-secret'`
	lost := testutil.Poll(func() bool { return !eval[bool](b, typed) }, 3*time.Second)
	assert.False(t, lost, "what was typed in the edit form (URL %q, password set %v) is gone",
		eval[string](b, `document.querySelector('`+sel("url")+`')?.value`), eval[bool](b, `!!document.querySelector('`+sel("password")+`')?.value`))

	// Another client changes a field nobody touched here.
	req, err := http.NewRequest(http.MethodPut, base+"/api/gateways/"+g.ID.String(), strings.NewReader(`{"model": "CTC-9000"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	b.wait("the new model in the form", `document.querySelector('`+sel("model")+`')?.value === 'CTC-9000'`)
	assert.True(t, eval[bool](b, typed), "what was typed, after another client's edit")
}
