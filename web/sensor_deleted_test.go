package web_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
	"github.com/ctcgw/gatewayd/internal/testutil"
)

// (Found by an audit, helper 2, whose test this is.) A gateway deleted
// while one of its sensors' pages is open deletes the sensor with it
// (API.md §4: its sensors are deleted with it), and the stream says so
// (gateway.deleted, with the gateway's id, which the sensor page knows).
// The gateway's own page then says "This gateway was deleted" and
// disables its buttons; the sensor's page went on showing the sensor as
// connected and offering "Take a reading", for good: it listened to
// sensor and reading events only.
func TestSensorPageSaysItsGatewayWasDeleted(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, sensors := addWithSensors(t, h, "doomed", 1)
	sid := sensors[0].ID.String()

	b := newBrowser(t)
	b.do("the sensor's page", chromedp.Navigate(base+"/#/sensors/"+sid))
	b.wait("the sensor drawn, live", `!!document.querySelector('#sn-h') && document.querySelector('section[aria-labelledby=sn-h] dl') && `+liveJS)
	req, err := http.NewRequest(http.MethodDelete, base+"/api/gateways/"+g.ID.String(), nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	// The sensor is gone on the server.
	res, err = http.Get(base + "/api/sensors/" + sid)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode)

	const told = `(() => {
	  const take = document.querySelector('#take-reading');
	  return !take || take.disabled || /deleted|not available/i.test(document.querySelector('main').textContent + ' ' + (document.querySelector('.toast, [role=status]')?.textContent || ''));
	})()`
	ok := testutil.Poll(func() bool { return eval[bool](b, told) }, 10*time.Second)
	shown := eval[string](b, `document.querySelector('main').innerText.slice(0, 400)`)
	assert.True(t, ok, "10 s after its gateway (and so the sensor) was deleted, the sensor's page still offers a reading and shows:\n%s", shown)
}

// A reading asked for just before the sensor's gateway was deleted: its
// answer, arriving after the page said so, left "Take a reading" enabled
// again (the button's act turned it back on when the request ended).
func TestTakeAReadingStaysOffWhenItsAnswerComesAfterTheDelete(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, sensors := addWithSensors(t, h, "doomed2", 1)
	sid := sensors[0].ID.String()

	b := newBrowser(t)
	b.do("the sensor's page", chromedp.Navigate(base+"/#/sensors/"+sid))
	b.wait("the sensor drawn, live", `!!document.querySelector('#sn-h') && document.querySelector('section[aria-labelledby=sn-h] dl') && `+liveJS)
	release := b.holdAnswer("take a reading", "*/api/sensors/"+sid+"/readings", chromedp.Click(chromedp.CSS(`#take-reading`)))
	req, err := http.NewRequest(http.MethodDelete, base+"/api/gateways/"+g.ID.String(), nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	b.wait("the page says the sensor was deleted", `!!document.querySelector('.page-head .st-DELETED')`)
	// The request's end shows as its toast ("Reading queued…"), written
	// in the same turn as the button is set; each toast is kept, as it
	// leaves the page after 3 s. (Its row need not be drawn: the
	// reading's failure may come first, and the list cannot be read again
	// for a deleted sensor.)
	eval[bool](b, `(() => { window.__toasts = [];
	  new MutationObserver(ms => ms.forEach(m => m.addedNodes.forEach(n => window.__toasts.push(n.textContent))))
	    .observe(document.getElementById('toasts'), {childList: true}); return true; })()`)
	release()
	b.wait("the reading's answer handled", `window.__toasts.some(t => t.startsWith('Reading queued'))`)
	assert.True(t, eval[bool](b, `document.querySelector('#take-reading').disabled`), "Take a reading is on again after the delete")
}
