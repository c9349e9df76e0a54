package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ctcgw/gatewayd/actors/actorstest"
)

// A sensor's readings list stays where it is first drawn: drawn before the
// sensor's panels above it (which wait for the gateway and its factory's
// equipment), it moved down under the pointer when they came, and a click
// on a reading's Show landed elsewhere (CI lost such a click in
// TestReadingSummaryOutlivesItsSamples). The gateway's answer is held
// until the readings' answer is in, as on a box where it comes last.
func TestSensorReadingsDoNotMoveUnderThePointer(t *testing.T) {
	h := harness(t, actorstest.FastConfig())
	base := serve(t, h)
	g, sensors := addWithSensors(t, h, "steady", 1)
	sid := sensors[0].ID.String()

	r := completeReading(t, base, sid)

	b := newBrowser(t)
	release := b.holdAnswer("the sensor's gateway", "*/api/gateways/"+g.ID.String(),
		chromedp.Navigate(base+"/#/sensors/"+sid))
	// The readings' answer is in, and two frames have passed since: a list
	// drawn on it is on screen.
	b.wait("the readings answered", `performance.getEntriesByType('resource').some(e => e.name.includes('/readings?') && e.responseEnd > 0)`)
	eval[bool](b, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	first := eval[float64](b, `document.querySelector('table.readings')?.getBoundingClientRect().top ?? -1`)
	release()

	b.wait("the sensor's panels and its readings drawn", `!!document.querySelector('#sn-h') && !!document.querySelector('.needs-admin form') &&
		!!document.querySelector('table.readings tr[data-reading="`+r.ID+`"] button')`)
	final := eval[float64](b, `document.querySelector('table.readings').getBoundingClientRect().top`)
	if first >= 0 {
		require.Equal(t, final, first, "the readings list moved after it was drawn (from %.0f px to %.0f px)", first, final)
	}
}
