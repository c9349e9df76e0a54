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
