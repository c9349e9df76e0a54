package web_test

import (
	"context"
	"encoding/json"
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
)

// README (What a hostile peer can and cannot do): a gateway "can make its
// own connection fail, and nothing more". A sensor's page shows, under the
// sensor's name and serial, the reading its link's ?reading= names, and
// took that id as it came: a reading of any sensor (say one a hostile
// gateway pushed, with samples of its choosing) was drawn, summary,
// waveform and spectrum, as a reading of an honest gateway's sensor by a
// link anyone can write (measured: the summary table and both charts
// drawn under "Pump 10001"). The id went into the API path unchecked too:
// ?reading=../tokens had the page GET /api/tokens with the reader's token
// (measured: the access log's "path":"/api/tokens"). (Found by an audit,
// helper 3, whose test this is.)
func TestAReadingLinkShowsOnlyItsOwnSensorsReading(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	ctx := context.Background()

	hg, sg := hostileGateway(t, h, "pusher", []ctc.Sensor{
		{Serial: 4242, Connected: 1, PartNum: "P", ReadRate: 25600, Samples: 256, Name: "spoof"},
	}, ctctest.Faults{})
	honest, _ := h.Add("honest") // serials 10001 and 10002
	var honestSensor, hostileSensor uuid.UUID
	testutil.Eventually(t, func() bool {
		l, err := h.Store.GatewaySensors(ctx, honest.ID)
		for _, s := range l {
			if s.Serial == 10001 {
				honestSensor = s.ID
			}
		}
		l, err2 := h.Store.GatewaySensors(ctx, hg.ID)
		if len(l) == 1 {
			hostileSensor = l[0].ID
		}
		return err == nil && err2 == nil && honestSensor != uuid.Nil && hostileSensor != uuid.Nil
	}, 15*time.Second, "both gateways' sensors stored")

	// The hostile gateway pushes a reading of its own sensor, unasked.
	var pushed struct {
		ID       uuid.UUID `json:"id"`
		SensorID uuid.UUID `json:"sensor_id"`
		Status   string    `json:"status"`
	}
	sent := 0
	testutil.Eventually(t, func() bool {
		if sent == 0 {
			sent = sg.PushReading(4242)
		}
		resp, err := http.Get(base + "/api/sensors/" + hostileSensor.String() + "/readings?limit=1")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var page struct{ Data []json.RawMessage }
		if json.NewDecoder(resp.Body).Decode(&page) != nil || len(page.Data) == 0 {
			return false
		}
		return json.Unmarshal(page.Data[0], &pushed) == nil && pushed.Status == string(gatewayd.ReadingComplete)
	}, 20*time.Second, "the pushed reading stored COMPLETE")
	require.NotEqual(t, honestSensor, pushed.SensorID)

	b := newBrowser(t)
	b.do("the honest sensor's page, with the hostile reading in its link",
		chromedp.Navigate(base+"/#/sensors/"+honestSensor.String()+"?reading="+pushed.ID.String()))
	b.wait("its heading", `document.querySelector('main h1')?.textContent.includes('(10001)')`)
	b.wait("the reading panel settled", `(() => { const d = document.querySelector('#reading');
  return d && !d.hidden && !!d.querySelector('.summary, .form-error'); })()`)
	assert.False(t, eval[bool](b, `!!document.querySelector('#reading .summary')`),
		"another sensor's reading is drawn as a reading of this sensor")
	assert.True(t, eval[bool](b, `[...document.querySelectorAll('#reading .form-error')].some(e => e.textContent.includes('another sensor'))`),
		"the page says the link's reading is another sensor's")

	before := strings.Count(h.Logs.String(), `"path":"/api/tokens"`)
	b.do("a reading id that is a path", chromedp.Navigate(base+"/#/sensors/"+honestSensor.String()+"?reading=../tokens"))
	b.wait("its heading", `document.querySelector('main h1')?.textContent.includes('(10001)')`)
	// The reading named in the link is asked for as soon as the readings
	// are drawn: settled is its panel hidden (nothing asked) or past
	// its "Loading…" (answered).
	b.wait("the readings listed and the link's reading settled", `(() => {
  if (!document.querySelector('table.readings, main .empty')) return false;
  const d = document.querySelector('#reading');
  return d.hidden || !d.querySelector('.muted');
})()`)
	assert.Equal(t, before, strings.Count(h.Logs.String(), `"path":"/api/tokens"`), "the page asked GET /api/tokens")
	assert.Empty(t, b.problems(), "console problems")
}
